"""A newcomer's machine without nginx, Varnish, the brotli_static module, newsboat or Chromium:
the tests that run them skip with the line that installs them, and no other test fails (an
autouse check once failed three export tests that never start nginx); under CI they fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import frontends
from tests.conftest import REPO

# The programs hidden: PATH names an empty folder, nginx's folders and module are elsewhere.
HIDDEN = """
import sys
from pathlib import Path
import pytest
import tests.frontends as f
f.SBIN = ()
f.BROTLI_STATIC = Path("/nonexistent/ngx_http_brotli_static_module.so")
sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_tests_that_need_a_missing_program_skip_with_its_install_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    selected = [
        "tests/test_export.py::test_nginx_serves_an_export_as_the_server_answers",
        "tests/test_export.py::test_a_broken_manifest_is_refused_before_anything_is_written",
        "tests/test_caches.py::test_a_dead_origin_is_covered_by_stale_copies",
        "tests/test_newsboat.py",
        "tests/test_browser.py::test_find_a_conflict_from_the_front_page_and_subscribe",
    ]
    env = {"PATH": str(empty), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    run = subprocess.run(
        [sys.executable, "-c", HIDDEN, *selected], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    out = run.stdout
    assert run.returncode == 0, out[-3000:]
    assert "1 passed" in out and " error" not in out and "failed" not in out, out[-3000:]
    for line in (
        "nginx, brotli_static: not installed (Debian: apt-get install nginx libnginx-mod-http-brotli-static; .ci/run installs it)",
        "nginx: not installed (Debian: apt-get install nginx; .ci/run installs it)",
        "varnishd: not installed (Debian: apt-get install varnish; .ci/run installs it)",
        "newsboat: not installed (Debian: apt-get install newsboat; .ci/run installs it)",
        "chromium, chromedriver: not installed (Debian: apt-get install chromium chromium-driver; .ci/run installs it)",
    ):
        assert line in out, out[-3000:]


def test_under_ci_a_missing_program_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(frontends, "SBIN", ())
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^varnishd: not installed \(Debian: apt-get install varnish;"):
        frontends.require("varnishd")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        frontends.require("varnishd")
