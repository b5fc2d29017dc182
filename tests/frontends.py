"""Debian's nginx and Varnish started on loopback with the configurations shipped in deploy/, for
tests/test_caches.py, tests/test_export.py and benchmarks/caches.py. The shipped files are used as
they are; only what differs per machine is replaced: the listen address, the origins' ports and
the cache's directory."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BROTLI_STATIC = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw(
    url: str, encoding: str, client: httpx.Client | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the bytes as sent (not decoded) of a GET with `encoding` accepted."""
    with contextlib.ExitStack() as stack:
        use = client or stack.enter_context(httpx.Client(timeout=10))
        with use.stream("GET", url, headers={"accept-encoding": encoding, **headers}) as response:
            return response.status_code, dict(response.headers), b"".join(response.iter_raw())


# What the suite runs besides Python, and the Debian package each comes in (.ci/run installs them
# all); nginx and varnishd live in /usr/sbin, which a user's PATH may not hold.
PACKAGES = {
    "nginx": "nginx",
    "brotli_static": "libnginx-mod-http-brotli-static",
    "varnishd": "varnish",
    "newsboat": "newsboat",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
}
SBIN = ("/usr/sbin", "/sbin")


def found(program: str) -> str | None:
    """Where `program` (a key of PACKAGES) is, or None."""
    if program == "brotli_static":
        return str(BROTLI_STATIC) if BROTLI_STATIC.exists() else None
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


def require(*programs: str) -> list[str]:
    """Their paths; a test that needs one that is missing is skipped with the line that installs
    it (under CI, where .ci/run installs them all, it fails instead)."""
    absent = [p for p in programs if found(p) is None]
    if absent:
        import pytest

        packages = " ".join(dict.fromkeys(PACKAGES[p] for p in absent))
        message = f"{', '.join(absent)}: not installed (Debian: apt-get install {packages}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return [str(found(p)) for p in programs]


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def _running(argv: list[str], port: int, log: Path) -> Iterator[int]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_listening(port, process, log)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def nginx_main(work: Path, http: str, modules: Sequence[Path] = ()) -> Path:
    """A whole nginx.conf for an unprivileged nginx in `work` around `http` (the http block)."""
    temp = work / "temp"
    for name in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / name).mkdir(parents=True, exist_ok=True)
    loads = "".join(f"load_module {m};\n" for m in modules)
    # Started as root, nginx's workers would run as nobody, who may not enter pytest's directories.
    loads += "user root;\n" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(
        f"{loads}daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log off;\n    client_body_temp_path {temp}/client;\n    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n    scgi_temp_path {temp}/scgi;\n"
        f"{http}\n}}\n"
    )
    return conf


@contextlib.contextmanager
def nginx(conf: Path, port: int, wrapper: Sequence[str] = ()) -> Iterator[int]:
    """nginx with `conf` until the block ends; its port once it listens. `wrapper` goes before
    the command (benchmarks pin it to a CPU with taskset)."""
    (binary,) = require("nginx")
    argv = [*wrapper, binary, "-p", str(conf.parent), "-c", str(conf)]
    with _running(argv, port, conf.parent / "nginx.out") as ready:
        yield ready


def nginx_cache_conf(work: Path, origins: Sequence[int], port: int) -> Path:
    """deploy/nginx/feeds-cache.conf in front of the origins on 127.0.0.1, listening on `port`."""
    return nginx_main(work, nginx_cache_http(work, origins, port))


def nginx_cache_http(work: Path, origins: Sequence[int], port: int) -> str:
    """deploy/nginx/feeds-cache.conf's text (an http block's part) with its origins, cache
    directory and port made local."""
    text = (DEPLOY / "nginx" / "feeds-cache.conf").read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in origins)
    text, n = re.subn(r"    server 127\.0\.0\.1:8000 [^\n]*\n", servers, text)
    assert n == 1, "deploy/nginx/feeds-cache.conf: the origin line moved"
    return text.replace("/var/cache/nginx/feeds", str(work / "cache")).replace(
        "listen 80;", f"listen 127.0.0.1:{port};"
    )


@contextlib.contextmanager
def nginx_cache(work: Path, origins: Sequence[int], wrapper: Sequence[str] = ()) -> Iterator[int]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with nginx(nginx_cache_conf(work, origins, port), port, wrapper) as ready:
        yield ready


@contextlib.contextmanager
def nginx_export(out: Path, work: Path, wrapper: Sequence[str] = ()) -> Iterator[int]:
    """nginx serving the export in `out` with the configuration it generated, on a free port (its
    listen line is the only change)."""
    require("nginx", "brotli_static")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    generated = (out / "nginx.conf").read_text()
    assert generated.count("listen 80;") == 1
    (work / "export.conf").write_text(generated.replace("listen 80;", f"listen 127.0.0.1:{port};"))
    with nginx(nginx_main(work, f"include {work / 'export.conf'};", modules=[BROTLI_STATIC]), port, wrapper) as ready:
        yield ready


@contextlib.contextmanager
def varnish_cache(work: Path, origins: Sequence[int]) -> Iterator[int]:
    """deploy/varnish/feeds.vcl in front of the origins on 127.0.0.1 (varnishd -F, no jail)."""
    work.mkdir(parents=True, exist_ok=True)
    text = (DEPLOY / "varnish" / "feeds.vcl").read_text()
    backend = re.search(r"backend origin1 \{.*?\n\}\n", text, re.DOTALL)
    assert backend, "deploy/varnish/feeds.vcl: backend origin1 moved"
    backends = "\n".join(
        backend.group(0).replace("origin1", f"origin{i}").replace('"8000"', f'"{p}"') for i, p in enumerate(origins, 1)
    )
    adds = "".join(f"    origins.add_backend(origin{i});\n" for i in range(1, len(origins) + 1))
    text = text.replace(backend.group(0), backends).replace("    origins.add_backend(origin1);\n", adds)
    vcl = work / "feeds.vcl"
    vcl.write_text(text)
    port = free_port()
    (binary,) = require("varnishd")
    argv = [binary, "-F", "-j", "none", "-n", str(work / "state"), "-a", f"127.0.0.1:{port}", "-f", str(vcl)]
    argv += ["-s", "malloc,64m", "-p", "thread_pool_min=5"]
    with _running(argv, port, work / "varnishd.out") as ready:
        yield ready
