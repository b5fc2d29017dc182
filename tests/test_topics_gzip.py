"""The /topics index's gzip joined from chunks compressed apart (feeds/publish/chunked.py): one
valid gzip member of exactly the plain bytes, the same bytes whichever chunks were remembered,
and a changed topic compresses only its chunk again."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from feeds.app import create_app
from feeds.config import Settings
from feeds.publish import chunked
from feeds.publish.chunked import CHUNK_TOPICS, ChunkedGzip, ChunkMemo, index_chunks
from feeds.publish.document import GZIP_LEVEL, Memos, publish_topics
from feeds.refresh import open_sources, refresh_all
from feeds.render.topics import TOPICS_DOC, IndexRow, topics_document
from feeds.store import Store
from tests.conftest import LiveServer

BASE = "https://feeds.example"


def many_rows(count: int) -> list[IndexRow]:
    """`count` topics, most events first as the store lists them, a few with names JSON escapes."""
    rows = [
        (f"topic-{n}", f'Topic "{n}" \u20ac', 1 + (count - n) // 7, f"2024-01-{1 + n % 28:02d}T00:00:00+00:00")
        for n in range(count)
    ]
    return sorted(rows, key=lambda r: (-r[2], r[0]))


def test_chunks_join_to_the_document_and_gzip_to_exactly_its_bytes() -> None:
    rows = many_rows(5000)
    chunks = index_chunks(BASE, rows, {})
    body = b"".join(chunks)
    assert body == topics_document(BASE, rows)
    assert 5000 // (4 * CHUNK_TOPICS) < len(chunks) < 5000 // 16  # boundaries by slug: tens of chunks
    compressed = ChunkedGzip(GZIP_LEVEL).compress(chunks)
    assert gzip.decompress(compressed) == body
    assert zlib.decompress(compressed, wbits=31) == body  # one gzip member, nothing after it
    assert zlib.decompress(compressed, wbits=47) == body  # what an automatic-header zlib reader makes of it
    one = zlib.decompressobj(wbits=31)
    assert one.decompress(compressed) == body and one.eof and one.unused_data == b""
    assert len(compressed) < len(body) / 5


@pytest.mark.parametrize("rows", [[], many_rows(1), many_rows(3)])
def test_an_index_of_few_or_no_topics_is_one_valid_chunk(rows: list[IndexRow]) -> None:
    chunks = index_chunks(BASE, rows, {})
    assert len(chunks) == 1 and chunks[0] == topics_document(BASE, rows)
    assert gzip.decompress(ChunkedGzip(1).compress(chunks)) == chunks[0]
    if not rows:
        assert chunks == [b"[]\n"]


def test_the_same_bytes_from_a_cold_or_a_warm_chunk_cache() -> None:
    rows = many_rows(3000)
    warm = ChunkedGzip(GZIP_LEVEL)
    first = warm.compress(index_chunks(BASE, rows, {}))
    assert warm.compressed == len(index_chunks(BASE, rows, {}))
    # A topic gains an event: it moves up the order, and the warm cache compresses only around it.
    slug, name, events, _ = rows[2000]
    changed = sorted(
        [*rows[:2000], (slug, name, events + 100, "2024-02-01T00:00:00+00:00"), *rows[2001:]],
        key=lambda r: (-r[2], r[0]),
    )
    chunks = index_chunks(BASE, changed, {})
    again = warm.compress(chunks)
    cold = ChunkedGzip(GZIP_LEVEL).compress(chunks)
    assert again == cold != first
    assert gzip.decompress(again) == b"".join(chunks) == topics_document(BASE, changed)
    assert 1 <= warm.compressed <= 3 < len(chunks)  # the chunk it left, the one it joined (maybe split)
    assert warm.compress(chunks) == cold and warm.compressed == 0


def test_one_topic_changed_compresses_only_its_chunk_again() -> None:
    rows = many_rows(3000)
    memo: ChunkMemo = {}
    warm = ChunkedGzip(GZIP_LEVEL)
    before = index_chunks(BASE, rows, memo)
    warm.compress(before)
    slug, name, events, _ = rows[1234]
    rows[1234] = (slug, name, events, "2024-03-01T00:00:00+00:00")  # reworded: same place in the order
    after = index_chunks(BASE, rows, memo)
    compressed = warm.compress(after)
    assert warm.compressed == 1
    differing = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(differing) == 1 and slug.encode() in after[differing[0]]
    assert gzip.decompress(compressed) == topics_document(BASE, rows)


async def test_the_served_index_decompresses_to_its_plain_bytes(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real server, with httpx and curl --compressed: the gzip of the stored index is
    the plain document, after a refresh that changed topics too; and a server's warm chunks
    give the bytes a fresh process makes."""
    monkeypatch.setattr(chunked, "CHUNK_TOPICS", 3)  # the example's topics in many chunks
    memos = Memos()
    await refresh_all(store, settings, open_sources(settings.sources), memos)
    rendition = await store.rendition(TOPICS_DOC, "json")
    assert rendition is not None and len(index_chunks(settings.base_url, await store.topic_index(), {})) > 3
    # A topic's events change in the source: the next refresh publishes the index again.
    page = next(p for p in sorted(settings_tree(settings).rglob("*.md")) if p.name != "index.md")
    page.unlink()
    await refresh_all(store, settings, open_sources(settings.sources), memos)
    changed = await store.rendition(TOPICS_DOC, "json")
    assert changed is not None and changed.etag != rendition.etag
    assert memos.index_gzip_for(settings.base_url).compressed < len(
        index_chunks(settings.base_url, await store.topic_index(), {})
    )
    await store.delete_renditions(TOPICS_DOC)
    await publish_topics(store, settings)  # cold: a fresh process
    cold = await store.rendition(TOPICS_DOC, "json")
    assert cold is not None and (cold.gzip, cold.etag) == (changed.gzip, changed.etag)
    assert gzip.decompress(changed.gzip) == changed.body
    assert brotli_decompress(changed.br) == changed.body
    with LiveServer(create_app(settings, scheduler=False)) as server:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/topics", headers={"Accept-Encoding": "gzip"})
            assert response.headers["content-encoding"] == "gzip"
            assert response.content == changed.body  # httpx decoded it
            # The ETag is the plain bytes' one, told apart per encoding as every document's is.
            assert response.headers["etag"].strip('W/"').removesuffix("-gz") == changed.etag
            plain = await client.get(f"{server.url}/topics", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers and plain.content == changed.body
        if shutil.which("curl"):
            curl = subprocess.run(
                ["curl", "-sS", "--compressed", "-H", "Accept-Encoding: gzip", f"{server.url}/topics"],
                capture_output=True,
                check=True,
                timeout=30,
            )
            assert curl.stdout == changed.body


def settings_tree(settings: Settings) -> Path:
    return Path(settings.sources[0].location)


def brotli_decompress(data: bytes) -> bytes:
    import brotli

    return bytes(brotli.decompress(data))
