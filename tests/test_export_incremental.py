"""`feeds export` again over an export: what it asks and writes follows what changed in the store
since (its record), and the tree it leaves is the one a fresh export of the store would write,
whatever happened before (a damaged or missing record, an export interrupted mid-way)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from feeds import export as export_module
from feeds.config import Settings
from feeds.export import Counts, export
from feeds.store import Store
from tests.helpers import refresh_once
from tests.test_websub import pages_of

Stat = tuple[int, int]  # (inode, mtime in ns): a write replaces the file (a new inode)


def files(out: Path) -> dict[str, bytes]:
    """Every file of an export but the manifest, by path; nginx.conf without its own directory."""
    found = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    found = {k: v for k, v in found.items() if not k.startswith("manifest.sqlite")}
    found["nginx.conf"] = found["nginx.conf"].replace(str(out.resolve()).encode(), b"OUT")
    return found


def stats(out: Path) -> dict[str, Stat]:
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    }


def manifest_rows(out: Path) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(out / "manifest.sqlite")) as db:
        return db.execute("SELECT name, url, doc, etag, last_modified, control FROM files ORDER BY name").fetchall()


async def fresh(settings: Settings, store: Store, out: Path) -> dict[str, bytes]:
    """What a first export of the store now writes."""
    counts = await export(settings, store, out)
    assert counts.walked and counts.unchanged == counts.removed == 0
    return files(out)


async def same_as_fresh(settings: Settings, store: Store, out: Path, elsewhere: Path) -> None:
    expected = await fresh(settings, store, elsewhere)
    got = files(out)
    assert sorted(got) == sorted(expected)
    assert [k for k in got if got[k] != expected[k]] == []
    assert manifest_rows(out) == manifest_rows(elsewhere)


async def test_nothing_changed_asks_nothing_and_writes_nothing(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    first = await export(settings, store, out)
    assert first.walked and first.written > 100 and first.asked >= first.written
    before = stats(out)
    await refresh_once(store, settings)  # the source read again, nothing in it changed
    again = await export(settings, store, out)
    assert (again.asked, again.written, again.removed, again.unchanged) == (0, 0, 0, first.written)
    after = stats(out)
    assert {k: v for k, v in after.items() if not k.startswith("manifest.sqlite")} == {
        k: v for k, v in before.items() if not k.startswith("manifest.sqlite")
    }
    # Another origin: only the configuration is written again.
    other = await export(settings, store, out, origin="http://origin.test")
    assert (other.asked, other.written) == (0, 0)
    assert b"proxy_pass http://origin.test" in (out / "nginx.conf").read_bytes()
    assert stats(out / "site") == {k.removeprefix("site/"): v for k, v in before.items() if k.startswith("site/")}


async def test_one_event_reworded_writes_its_files_and_no_other(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    first = await export(settings, store, out)
    before, old = stats(out / "site"), files(out)
    page = pages_of(Path(settings.sources[0].location))[-1]
    page.write_text(page.read_text().replace("\n# ", "\n# (Reworded) ", 1))
    await refresh_once(store, settings)
    changed = await export(settings, store, out)
    assert not changed.walked and 0 < changed.written < first.written / 4
    # A request per file of the documents the change touched, not per file of the export.
    assert changed.asked < first.asked / 4
    now = files(out)
    rewritten = {k for k, v in stats(out / "site").items() if before.get(k) != v}
    differ = {k.removeprefix("site/") for k in now if k.startswith("site/") and old.get(k) != now[k]}
    assert rewritten == differ and len(rewritten) == changed.written
    assert any(k.startswith("news/") and k.endswith(".html") for k in rewritten)  # the event's own page
    assert b"(Reworded)" in (out / "site" / "feeds" / "latest.atom").read_bytes()
    await same_as_fresh(settings, store, out, tmp_path / "fresh1")
    # The event removed at its source: its files go, nothing else of the tree is left behind.
    page.unlink()
    await refresh_once(store, settings)
    gone = await export(settings, store, out)
    assert not gone.walked and gone.removed >= 4 * 3, gone  # its page and three twins, in three encodings
    assert not list((out / "site").rglob(page.stem + ".*"))
    assert page.stem.encode() not in (out / "moved.map").read_bytes()
    await same_as_fresh(settings, store, out, tmp_path / "fresh2")


@pytest.mark.parametrize("damage", ["record emptied", "record nonsense", "manifest gone", "other settings"])
async def test_a_record_that_does_not_follow_walks_every_document(
    settings: Settings, store: Store, tmp_path: Path, damage: str
) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    first = await export(settings, store, out)
    page = pages_of(Path(settings.sources[0].location))[-1]
    page.write_text(page.read_text().replace("\n# ", "\n# (Reworded) ", 1))
    await refresh_once(store, settings)
    if damage == "manifest gone":
        for path in out.glob("manifest.sqlite*"):
            path.unlink()
    elif damage != "other settings":
        with closing(sqlite3.connect(out / "manifest.sqlite")) as db, db:
            if damage == "record emptied":
                db.execute("DELETE FROM record")
            else:
                db.execute("UPDATE record SET value = 'x' WHERE key IN ('renditions', 'changes')")
    if damage == "other settings":
        from dataclasses import replace

        settings = replace(settings, title="Another title")
    again = await export(settings, store, out)
    assert again.walked and again.asked >= first.written
    if damage in ("record emptied", "record nonsense"):
        # Asked with the ETags the manifest still holds: only what changed is written.
        assert 0 < again.written < first.written / 4
    await same_as_fresh(settings, store, out, tmp_path / "fresh")
    after = await export(settings, store, out)
    assert (after.asked, after.written) == (0, 0)


async def test_an_interrupted_export_is_completed_by_the_next(
    settings: Settings, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    await export(settings, store, out)
    page = pages_of(Path(settings.sources[0].location))[-1]
    page.write_text(page.read_text().replace("\n# ", "\n# (Reworded) ", 1))
    (pages_of(Path(settings.sources[0].location))[0]).unlink()
    await refresh_once(store, settings)
    # The disk fills up (say) after a few files of the second export.
    write = export_module._Run._write
    calls = 0

    def failing(self: export_module._Run, name: str, body: bytes, mtime: float) -> None:
        nonlocal calls
        calls += 1
        if calls > 5:
            raise OSError(28, "No space left on device")
        write(self, name, body, mtime)

    monkeypatch.setattr(export_module._Run, "_write", failing)
    with pytest.raises(OSError, match="No space"):
        await export(settings, store, out)
    monkeypatch.setattr(export_module._Run, "_write", write)
    resumed: Counts = await export(settings, store, out)
    assert resumed.walked  # the record says the last run did not finish
    await same_as_fresh(settings, store, out, tmp_path / "fresh")
    # A first export interrupted likewise.
    calls = 0
    monkeypatch.setattr(export_module._Run, "_write", failing)
    with pytest.raises(OSError, match="No space"):
        await export(settings, store, tmp_path / "second")
    monkeypatch.setattr(export_module._Run, "_write", write)
    await export(settings, store, tmp_path / "second")
    await same_as_fresh(settings, store, tmp_path / "second", tmp_path / "fresh2")


async def test_a_damaged_manifest_is_refused(settings: Settings, store: Store, tmp_path: Path) -> None:
    await refresh_once(store, settings)
    out = tmp_path / "export"
    out.mkdir()
    (out / "manifest.sqlite").write_bytes(b"not a database, but long enough to be read as one" * 100)
    with pytest.raises(export_module.ExportError, match=r"manifest\.sqlite"):
        await export(settings, store, out)
    assert not (out / "site").exists()
