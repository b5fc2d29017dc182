"""The synthetic corpus generator (benchmarks/generate_corpus.py): deterministic, and everything it
writes reads back through feeds' own parsers; and a smoke run of the ingest benchmark. The wrk
benchmarks are not run here."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.chains import Version, chain_root, current_version
from feeds.ids import page_path
from feeds.model import DayListing, Page
from feeds.pages import is_day_listing, parse_document

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "generate_corpus.py"
EVENTS = 300


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate_corpus", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_corpus", module)
    spec.loader.exec_module(module)
    return module


def _run(out: Path, seed: int = 1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--events", str(EVENTS), "--out", str(out), "--seed", str(seed), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "news").rglob("*.md"))}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    done = _run(out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify:" in done.stdout
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert _run(again).returncode == 0
    first, second = _files(corpus), _files(again)
    assert first.keys() == second.keys()
    sample = sorted(first)[:: max(1, len(first) // 10)]
    assert sample
    for rel in sample:
        assert hashlib.sha256(first[rel]).digest() == hashlib.sha256(second[rel]).digest(), rel
    assert first == second
    other = tmp_path / "other"
    assert _run(other, seed=2).returncode == 0
    assert _files(other) != first


def test_layout_is_the_archive_layout(corpus: Path) -> None:
    files = _files(corpus)
    for rel in files:
        parts = rel.split("/")
        assert len(parts) == 5 and parts[0] == "news", rel
        year, month, day = parts[1:4]
        assert len(year) == 4 and len(month) == 2 and not day.startswith("0"), rel
        assert page_path(rel) is not None
    days = {rel.rsplit("/", 1)[0] for rel in files}
    assert all(f"{d}/index.md" in files for d in days)


def test_every_page_parses_and_chains_fold(corpus: Path) -> None:
    pages: dict[str, Page] = {}
    listings: list[DayListing] = []
    for rel, data in _files(corpus).items():
        doc = parse_document(rel, data)
        if is_day_listing(rel):
            assert isinstance(doc, DayListing), rel
            listings.append(doc)
        else:
            assert isinstance(doc, Page), rel
            assert doc.headline and 1 <= len(doc.related) <= 5, rel
            assert len(doc.sources) <= 3, rel
            pages[doc.path] = doc
    listed = [entry.path for listing in listings for entry in listing.entries]
    # One listed entry per event (its current version), every one a generated page.
    assert len(listed) == len(set(listed)) == EVENTS
    assert set(listed) <= pages.keys()
    # Related links point at generated pages.
    assert all(page_path(r.url) in pages for p in pages.values() for r in p.related)

    chains = {path: p for path, p in pages.items() if p.changes}
    assert chains, "no version chains generated"
    events: set[str] = set()
    versions = {path: Version.of(p) for path, p in pages.items()}
    for path, page in chains.items():
        members = [versions[page_path(c.url) or ""] for c in page.changes if page_path(c.url) in versions]
        assert len(members) == len(page.changes) in (2, 3), path
        root = chain_root(members)
        assert root == page_path(page.changes[0].url), path
        assert chain_root(members[::-1]) == root
        if page.path in listed:
            assert current_version(members) == current_version(members[::-1]) == page.path
        events.add(root)
    # Folding: every page belongs to exactly one event, and there are EVENTS events.
    in_chains = {page_path(c.url) for p in chains.values() for c in p.changes}
    assert len(pages) - len(in_chains) + len(events) == EVENTS
    # About a tenth of the events are chains.
    assert 0.03 * EVENTS <= len(events) <= 0.2 * EVENTS


def test_day_listings_link_back(corpus: Path) -> None:
    gen = _load_generator()
    listings = sorted(
        (parse_document(rel, data) for rel, data in _files(corpus).items() if is_day_listing(rel)),
        key=lambda d: d.date,  # type: ignore[union-attr]
    )
    assert all(isinstance(d, DayListing) for d in listings)
    for before, after in itertools.pairwise(listings):
        assert after.previous == page_path(f"news/{gen.day_path(before.date)}/index")  # type: ignore[union-attr]


def test_topic_vocabulary_is_large_and_distinct() -> None:
    gen = _load_generator()
    names = gen.topic_vocabulary(25_000, 1)
    from feeds.ids import topic_key

    assert len({topic_key(n) for n in names}) == 25_000
    assert names == gen.topic_vocabulary(25_000, 1)


@pytest.mark.slow
def test_ingest_benchmark_smoke_run_measures_every_figure() -> None:
    """benchmarks/ingest.py --quick (a small corpus; bulk and incremental): it runs and reports
    every figure. Timings are not judged here."""
    import json
    import re

    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ingest.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.rindex("\n{") :])
    assert report["bulk"]["events"] == 2000 and report["bulk"]["peak_rss_mib"] > 0
    sizes = report["bulk"]["store_bytes_by_table"]  # SQLite's dbstat, by table and index
    assert sizes["events"] > 0 and sizes["pages"] > 0 and sizes["search_data"] > 0
    assert list(sizes.values()) == sorted(sizes.values(), reverse=True)
    assert report["incremental_small_ms"] > 0 and report["incremental_big_ms"] > 0
    assert re.fullmatch(r"[0-9.]+", str(report["incremental_ratio_big_small"]))
