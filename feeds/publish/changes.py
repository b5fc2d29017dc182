"""Publishing changes: after a batch of stored changes (or a crash that left some unpublished), the
documents they touched; after the settings that shape documents changed, every document. Of
those, the hot ones (feeds.publish.hot) are rendered now; the others stored are marked stale, and
made again at their next request."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from feeds import fingerprint
from feeds.config import Settings
from feeds.model import FeedKey
from feeds.publish.bulk import publish_keys_in_processes
from feeds.publish.document import AHEAD, Memos, publish_keys, publish_topics
from feeds.publish.hot import hot_set
from feeds.publish.plan import affected, every_key, tiers
from feeds.render.topics import TOPICS_DOC
from feeds.store import Store

log = logging.getLogger("feeds.publish")


async def publish_changes(
    store: Store,
    settings: Settings,
    names: Iterable[str],
    events: Iterable[str] = (),
    progress: Callable[[int], object] | None = None,
    processes: int = 1,
    renamed: Iterable[str] = (),
    memos: Memos | None = None,
) -> int:
    """Render what a batch of changes touched (`names`: feeds, `events`: changed events,
    `renamed`: topics shown by a new name), and whatever stored changes are still unpublished
    (Store.pending: a process killed before it published leaves them), then the /topics index.
    When the settings that shape documents changed since the store was last rendered, every
    document instead. `memos`: kept by a caller that publishes again and again."""
    memos = memos or Memos()
    if await fingerprint.needs_rerender(store, settings):
        log.info("settings that shape the documents changed: rendering every document")
        return await publish_all(store, settings, progress, processes, also=names, memos=memos)
    pending = await store.pending()
    changed = set(events) | pending.changed
    touched = await affected(store, settings, set(names) | pending.feeds, changed, set(renamed) | pending.renamed)
    keys, cold = (await hot_set(store, settings)).split(touched)
    stale = await store.mark_stale(sorted(k.name for k in cold))
    if stale:
        log.info("%d stored documents nobody reads now marked stale (made again when asked for)", stale)
    first = sorted(changed) if len(changed) <= AHEAD else []
    if not await store.rendition_etags("latest"):
        # The store's first documents: the most wanted first.
        total = await publish_in_tiers(store, settings, keys, processes, progress, first, memos)
    else:
        total = await publish_keys_in_processes(store, settings, keys, processes, progress, first, memos.entries)
    if any(k.kind == "topic" for k in touched) or not await store.rendition_etags(TOPICS_DOC):
        total += await publish_topics(store, settings, memos)
    await store.clear_pending(pending)
    if total:
        await store.checkpoint()  # now, while nobody waits for the next write
    return total


async def publish_in_tiers(
    store: Store,
    settings: Settings,
    keys: Iterable[FeedKey],
    processes: int = 1,
    progress: Callable[[int], object] | None = None,
    first: Sequence[str] = (),
    memos: Memos | None = None,
) -> int:
    """Publish many documents tier by tier (`tiers`), the /topics index after the topic heads it
    lists: until a document is stored the server answers 503 for it."""
    memos = memos or Memos()
    latest, heads, pages = tiers(keys)
    total = 0
    if latest:
        # The events `first` are in it: their entries are made with it, and found by the others.
        total += await publish_keys(store, settings, latest, progress, memos.entries, first=first)
    first = () if latest else first
    total += await publish_keys_in_processes(store, settings, heads, processes, progress, first, memos.entries)
    total += await publish_topics(store, settings, memos)
    return total + await publish_keys_in_processes(store, settings, pages, processes, progress, (), memos.entries)


async def publish_all(
    store: Store,
    settings: Settings,
    progress: Callable[[int], object] | None = None,
    processes: int = 1,
    also: Iterable[str] = (),
    memos: Memos | None = None,
    everything: bool = False,
) -> int:
    """Render every hot document the store holds and mark the others stale (after the settings
    that shape documents changed, or an upgrade), or every document (`everything`: `feeds
    publish --all`), in tiers: `latest` first, then topic heads and dates, then older topic
    pages. Unchanged bytes are not stored (their ETags stay). Notes the settings in the store
    when done: an interrupted run is done again at the next start. `also`: feeds a change
    touched, which may be gone (their documents are deleted)."""
    pending = await store.pending()  # feeds the store left to publish, which may be gone too
    keys = {FeedKey.parse(name) for name in {*pending.feeds, *also}} | await every_key(store, settings)
    if not everything:
        keys = (await hot_set(store, settings)).split(keys)[0]
        await store.mark_all_stale(keep=[TOPICS_DOC, *sorted(k.name for k in keys)])
    total = await publish_in_tiers(store, settings, keys, processes, progress, (), memos)
    await store.clear_pending(pending)
    await fingerprint.record(store, settings)
    if total:
        await store.checkpoint()
    return total
