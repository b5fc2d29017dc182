"""The schema: ordered, recorded migrations (`PRAGMA user_version`), and the triggers that keep counts."""

from __future__ import annotations

import sqlite3

from feeds.store.topic_writes import MIGRATION as TOPICS_MIGRATION

SCHEMA_VERSION = 21


# Kept up to date by triggers: how often each spelling of a topic is used by live events (its
# count and display name never need a scan of its events), and its number of slots.
_SPELLING_TRIGGERS = """
    CREATE TRIGGER event_topics_insert AFTER INSERT ON event_topics WHEN NEW.live = 1 BEGIN
        INSERT INTO topic_spellings VALUES (NEW.topic_id, NEW.spelling, 1)
            ON CONFLICT (topic_id, spelling) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER event_topics_update AFTER UPDATE OF live, spelling ON event_topics BEGIN
        UPDATE topic_spellings SET n = n - 1
            WHERE OLD.live = 1 AND topic_id = OLD.topic_id AND spelling = OLD.spelling;
        INSERT INTO topic_spellings SELECT NEW.topic_id, NEW.spelling, 1 WHERE NEW.live = 1
            ON CONFLICT (topic_id, spelling) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER event_topics_delete AFTER DELETE ON event_topics WHEN OLD.live = 1 BEGIN
        UPDATE topic_spellings SET n = n - 1 WHERE topic_id = OLD.topic_id AND spelling = OLD.spelling;
    END;
"""


_SLOT_TRIGGER = """
    CREATE TRIGGER event_topics_slot AFTER INSERT ON event_topics BEGIN
        UPDATE topics SET slots = slots + 1 WHERE id = NEW.topic_id;
    END;
"""


MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE pages (
        path TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL,
        version TEXT NOT NULL,
        chain TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE INDEX pages_chain ON pages(chain);
    CREATE INDEX pages_source ON pages(source);
    CREATE TABLE links (page TEXT NOT NULL, linked TEXT NOT NULL, PRIMARY KEY (page, linked)) WITHOUT ROWID;
    CREATE INDEX links_linked ON links(linked);
    CREATE TABLE aliases (path TEXT PRIMARY KEY, chain TEXT NOT NULL);
    CREATE INDEX aliases_chain ON aliases(chain);
    CREATE TABLE events (
        key TEXT PRIMARY KEY,
        guid TEXT NOT NULL,
        date TEXT NOT NULL,
        current TEXT NOT NULL,
        relpath TEXT NOT NULL,
        source TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL,
        published TEXT NOT NULL,
        updated TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        seq INTEGER NOT NULL UNIQUE,  -- arrival order, never reused: stable topic pages
        live INTEGER NOT NULL DEFAULT 1,
        deleted_at TEXT
    );
    CREATE INDEX events_order ON events(live, date DESC, seq DESC);
    CREATE INDEX events_deleted ON events(deleted_at) WHERE deleted_at IS NOT NULL;
    CREATE TABLE topics (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        updated TEXT
    );
    CREATE TABLE event_topics (
        topic_id INTEGER NOT NULL REFERENCES topics(id),
        event TEXT NOT NULL REFERENCES events(key),
        spelling TEXT NOT NULL,
        live INTEGER NOT NULL,
        date TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (topic_id, event)
    ) WITHOUT ROWID;
    CREATE INDEX event_topics_seq ON event_topics(topic_id, seq);
    -- How often each spelling of a topic is used by live events, kept by triggers so that a
    -- topic's count and display name never need a scan of its events.
    CREATE TABLE topic_spellings (
        topic_id INTEGER NOT NULL,
        spelling TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (topic_id, spelling)
    ) WITHOUT ROWID;
"""
    + _SPELLING_TRIGGERS
    + """    CREATE INDEX event_topics_event ON event_topics(event);
    CREATE TABLE renditions (
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        body BLOB NOT NULL,
        gz BLOB NOT NULL,
        br BLOB NOT NULL,
        etag TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        content_type TEXT NOT NULL,
        rendered_at TEXT NOT NULL,
        version INTEGER NOT NULL,  -- the `renditions` counter in meta when written
        PRIMARY KEY (feed, fmt)
    ) WITHOUT ROWID;
    CREATE INDEX renditions_version ON renditions(version);
    CREATE TABLE cursors (source TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE fetches (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body BLOB,
        missing_since TEXT
    ) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TEXT NOT NULL);
    INSERT INTO meta VALUES ('created', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
    """,
    # A topic's slots numbered as they are taken, and counted: finding a page's events, an
    # event's page and a topic's length are index lookups, not counts over a topic of 50,000
    # events.
    2: """
    ALTER TABLE topics ADD COLUMN slots INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_topics ADD COLUMN slot INTEGER;
    UPDATE event_topics SET slot = r.n FROM (
        SELECT topic_id, event, row_number() OVER (PARTITION BY topic_id ORDER BY seq) - 1 AS n FROM event_topics
    ) AS r WHERE r.topic_id = event_topics.topic_id AND r.event = event_topics.event;
    UPDATE topics SET slots = (SELECT count(*) FROM event_topics et WHERE et.topic_id = topics.id);
    DROP INDEX event_topics_seq;
    CREATE UNIQUE INDEX event_topics_slot ON event_topics(topic_id, slot);
"""
    + _SLOT_TRIGGER
    + """    """,
    # A document's validators without its bytes: in the table they come after the bodies, and
    # reading them walked every overflow page of ~100 KB of body, gzip and Brotli.
    3: """
    CREATE INDEX renditions_validators ON renditions(feed, etag, last_modified);
    """,
    # Every event's entry as last rendered, in each format, with the stamp of what it depends on
    # (feeds.entries.entry_stamp): documents are joined from these without making entries again.
    4: """
    CREATE TABLE entries (
        event TEXT PRIMARY KEY,
        stamp TEXT NOT NULL,
        atom BLOB NOT NULL,
        rss BLOB NOT NULL,
        json BLOB NOT NULL
    );
    """,
    # What a directory source last read of each file (mtime, size), kept with the pages it read
    # them into: a new process (a restarted server) stats the tree and reads only what changed,
    # instead of every file once.
    5: """
    CREATE TABLE source_files (
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (source, relpath)
    ) WITHOUT ROWID;
    """,
    # Members read by revision and slot range; renditions keep gzip and Brotli only (docs/architecture.md).
    6: """
    ALTER TABLE events ADD COLUMN rev INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE event_topics_v6 (
        topic_id INTEGER NOT NULL REFERENCES topics(id),
        slot INTEGER NOT NULL,
        event TEXT NOT NULL REFERENCES events(key),
        spelling TEXT NOT NULL,
        live INTEGER NOT NULL,
        date TEXT NOT NULL,
        seq INTEGER NOT NULL,
        rev INTEGER NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (topic_id, slot)
    ) WITHOUT ROWID;
    INSERT INTO event_topics_v6
        SELECT et.topic_id, et.slot, et.event, et.spelling, et.live, et.date, et.seq, coalesce(e.rev, 1),
            coalesce(e.updated, et.date || 'T00:00:00+00:00')
        FROM event_topics et LEFT JOIN events e ON e.key = et.event;
    DROP TABLE event_topics;
    ALTER TABLE event_topics_v6 RENAME TO event_topics;
    CREATE UNIQUE INDEX event_topics_event ON event_topics(event, topic_id);
"""
    + _SPELLING_TRIGGERS
    + _SLOT_TRIGGER
    + """    CREATE TABLE renditions_v6 (
        id INTEGER PRIMARY KEY,
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        etag TEXT NOT NULL,  -- of the plain bytes
        last_modified TEXT NOT NULL,
        content_type TEXT NOT NULL,
        rendered_at TEXT NOT NULL,
        version INTEGER NOT NULL,  -- the `renditions` counter in meta when written
        spans BLOB,
        gz BLOB NOT NULL,
        br BLOB NOT NULL
    );
    INSERT INTO renditions_v6 (feed, fmt, etag, last_modified, content_type, rendered_at, version, spans, gz, br)
        SELECT feed, fmt, etag, last_modified, content_type, rendered_at, version, NULL, gz, br FROM renditions;
    DROP TABLE renditions;
    ALTER TABLE renditions_v6 RENAME TO renditions;
    CREATE UNIQUE INDEX renditions_feed ON renditions(feed, fmt);
    CREATE INDEX renditions_version ON renditions(version);
    """,
    # Topics keyed without transliteration, and context lists resolved against every known name
    # (feeds.store.topic_writes). The store is keyed again right after (its folding differs: see _migrate).
    7: TOPICS_MIGRATION,
    # The archive's own evidence beside Changes chains (docs/architecture.md): day listings (which
    # pages are current, and the heading of old renderings), each page's source time, first source
    # and cover image (earlier renderings of a listed page), and the events no listing explains.
    8: """
    ALTER TABLE pages ADD COLUMN modified TEXT;
    ALTER TABLE pages ADD COLUMN day TEXT;
    ALTER TABLE pages ADD COLUMN lead TEXT;
    ALTER TABLE pages ADD COLUMN image TEXT;
    UPDATE pages SET day = substr(path, 1, 17), lead = json_extract(doc, '$.sources[0][1]'),
        image = json_extract(doc, '$.image');
    CREATE INDEX pages_day ON pages(day, lead);
    CREATE TABLE listings (
        path TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        relpath TEXT NOT NULL,
        day TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX listings_day ON listings(day);
    CREATE TABLE listed (
        page TEXT NOT NULL,
        listing TEXT NOT NULL,
        heading TEXT,
        PRIMARY KEY (page, listing)
    ) WITHOUT ROWID;
    CREATE INDEX listed_listing ON listed(listing);
    CREATE TABLE evidence (page TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX evidence_target ON evidence(target);
    CREATE TABLE unlisted (key TEXT PRIMARY KEY, day TEXT NOT NULL, relpath TEXT NOT NULL, reason TEXT NOT NULL);
    CREATE INDEX unlisted_day ON unlisted(day);
    CREATE INDEX events_newest ON events(live, date DESC, key DESC);
    UPDATE event_topics SET slot = -1 - r.n FROM (
        SELECT topic_id, event, row_number() OVER (PARTITION BY topic_id ORDER BY date, event) - 1 AS n FROM event_topics
    ) AS r WHERE r.topic_id = event_topics.topic_id AND r.event = event_topics.event;
    UPDATE event_topics SET slot = -1 - slot;
    """,
    # What still needs rendering, written in the transaction of the change that needs it: a process
    # killed between storing and publishing leaves it for the next refresh or start to finish.
    # `mark` is the batch that last asked, so publishing clears only what it read.
    9: """
    CREATE TABLE IF NOT EXISTS pending (kind TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, value)) WITHOUT ROWID;
    CREATE TABLE pending_v9 (
        kind TEXT NOT NULL,  -- feed | event | renamed
        value TEXT NOT NULL,
        mark INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, value)
    ) WITHOUT ROWID;
    INSERT INTO pending_v9 (kind, value) SELECT kind, value FROM pending;
    -- Schema 8 put every topic's slots in (date, key) order: all of its pages are rendered again.
    INSERT OR IGNORE INTO pending_v9 (kind, value) SELECT 'renamed', slug FROM topics;
    INSERT OR IGNORE INTO pending_v9 (kind, value) SELECT 'feed', 'topics/' || slug FROM topics;
    DROP TABLE pending;
    ALTER TABLE pending_v9 RENAME TO pending;
    """,
    # Every document also has an HTML page (feeds/render/html.py): entries keep that format too.
    # Entries made before it are made again (their stamps hold the renderers' version).
    10: """
    ALTER TABLE entries ADD COLUMN html BLOB NOT NULL DEFAULT x'';
    """,
    # Live events per topic and month, kept by triggers: a topic page's chart reads a few hundred
    # rows, not the topic's every membership (50,000 for the largest of 400,000 events).
    11: """
    CREATE TABLE IF NOT EXISTS topic_months (
        topic_id INTEGER NOT NULL,
        month TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (topic_id, month)
    ) WITHOUT ROWID;
    DELETE FROM topic_months;
    INSERT INTO topic_months SELECT topic_id, substr(date, 1, 7), count(*) FROM event_topics WHERE live = 1
        GROUP BY topic_id, substr(date, 1, 7);
    CREATE TRIGGER IF NOT EXISTS topic_months_insert AFTER INSERT ON event_topics WHEN NEW.live = 1 BEGIN
        INSERT INTO topic_months VALUES (NEW.topic_id, substr(NEW.date, 1, 7), 1)
            ON CONFLICT (topic_id, month) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER IF NOT EXISTS topic_months_update AFTER UPDATE OF live, date, topic_id ON event_topics BEGIN
        UPDATE topic_months SET n = n - 1
            WHERE OLD.live = 1 AND topic_id = OLD.topic_id AND month = substr(OLD.date, 1, 7);
        INSERT INTO topic_months SELECT NEW.topic_id, substr(NEW.date, 1, 7), 1 WHERE NEW.live = 1
            ON CONFLICT (topic_id, month) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER IF NOT EXISTS topic_months_delete AFTER DELETE ON event_topics WHEN OLD.live = 1 BEGIN
        UPDATE topic_months SET n = n - 1 WHERE topic_id = OLD.topic_id AND month = substr(OLD.date, 1, 7);
    END;
    """,
    # An event's topics and whether each is live, read from the index alone: related topics look
    # at 500 events' topics for every topic page (3.7 -> 1.0 ms a page).
    12: """
    DROP INDEX IF EXISTS event_topics_event;
    CREATE UNIQUE INDEX event_topics_event ON event_topics(event, topic_id, live);
    """,
    # Topics retired into another (aliases, a folding that joins names): their slugs redirect.
    13: """
    CREATE TABLE IF NOT EXISTS topic_moves (slug TEXT PRIMARY KEY, target INTEGER NOT NULL REFERENCES topics(id));
    """,
    # The changes cursor (/changes): each event's latest change, numbered by a sequence that only
    # grows (AUTOINCREMENT never reuses a number), kept by triggers on every path that writes an
    # event (a batch, a deletion, a topic renamed, keying again). Delete, then insert: a trigger's
    # OR REPLACE would give way to the policy of the statement that fired it.
    14: """
    CREATE TABLE IF NOT EXISTS changes (
        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
        event TEXT NOT NULL UNIQUE,
        guid TEXT NOT NULL,
        kind TEXT NOT NULL,  -- created | updated | deleted
        updated TEXT NOT NULL
    );
    INSERT OR REPLACE INTO changes (event, guid, kind, updated)
        SELECT key, guid, CASE WHEN live THEN 'created' ELSE 'deleted' END, coalesce(deleted_at, updated)
        FROM events ORDER BY seq;
    CREATE TRIGGER IF NOT EXISTS changes_insert AFTER INSERT ON events BEGIN
        DELETE FROM changes WHERE event = NEW.key;
        INSERT INTO changes (event, guid, kind, updated)
            VALUES (NEW.key, NEW.guid, CASE WHEN NEW.live THEN 'created' ELSE 'deleted' END, NEW.updated);
    END;
    CREATE TRIGGER IF NOT EXISTS changes_update AFTER UPDATE OF rev ON events WHEN NEW.rev != OLD.rev BEGIN
        DELETE FROM changes WHERE event = NEW.key;
        INSERT INTO changes (event, guid, kind, updated)
            VALUES (NEW.key, NEW.guid,
                CASE WHEN NOT NEW.live THEN 'deleted' WHEN NOT OLD.live THEN 'created' ELSE 'updated' END,
                coalesce(NEW.deleted_at, NEW.updated));
    END;
    CREATE TRIGGER IF NOT EXISTS changes_delete AFTER DELETE ON events BEGIN
        DELETE FROM changes WHERE event = OLD.key;
        INSERT INTO changes (event, guid, kind, updated) VALUES (OLD.key, OLD.guid, 'deleted', OLD.updated);
    END;
    """,
    # Who follows what (feeds/subscribers.py): per day and feed, digests of the clients that polled
    # it (and whether their User-Agent reported subscribers), and each aggregator's latest report.
    15: """
    CREATE TABLE IF NOT EXISTS feed_clients (
        day TEXT NOT NULL, feed TEXT NOT NULL, client TEXT NOT NULL, reported INTEGER NOT NULL,
        PRIMARY KEY (day, feed, client)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS feed_reports (
        day TEXT NOT NULL, feed TEXT NOT NULL, aggregator TEXT NOT NULL, feed_id TEXT NOT NULL,
        subscribers INTEGER NOT NULL,
        PRIMARY KEY (day, feed, aggregator, feed_id)
    ) WITHOUT ROWID;
    """,
    # WebSub subscriptions of the built-in hub (feeds/websub.py): active until `expires`.
    16: """
    CREATE TABLE IF NOT EXISTS websub (
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        callback TEXT NOT NULL,
        secret TEXT NOT NULL,  -- empty: deliveries are not signed
        expires TEXT NOT NULL,
        PRIMARY KEY (feed, fmt, callback)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS websub_expires ON websub(expires);
    """,
    # What the hub owes (feeds/websub.py), kept in the store so that a change written by any process
    # is pushed by one server process, and a restart neither loses nor repeats a delivery: the ETag
    # each subscriber has (`sent`), one row per delivery owed (retried from `due`), and the
    # renditions `version` up to which changes were turned into deliveries (`websub_cursor`).
    17: """
    ALTER TABLE websub ADD COLUMN sent TEXT;
    UPDATE websub SET sent = (SELECT etag FROM renditions r WHERE r.feed = websub.feed AND r.fmt = websub.fmt);
    CREATE TABLE IF NOT EXISTS websub_outbox (
        feed TEXT NOT NULL,
        fmt TEXT NOT NULL,
        callback TEXT NOT NULL,
        failures INTEGER NOT NULL,
        due TEXT NOT NULL,
        PRIMARY KEY (feed, fmt, callback),
        FOREIGN KEY (feed, fmt, callback) REFERENCES websub (feed, fmt, callback) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS websub_outbox_due ON websub_outbox(due);
    INSERT OR IGNORE INTO meta VALUES ('websub_cursor', coalesce((SELECT value FROM meta WHERE key = 'renditions'), '0'));
    """,
    # A day listing's `_Context:` names count for the pages it names (feeds.store.listings): kept
    # per listed page. Listings stored before have none until they are read again: a directory
    # source reads its listing files again at its next refresh (the other sources when a listing
    # changes, or by `feeds ingest`).
    18: """
    ALTER TABLE listed ADD COLUMN contexts TEXT;
    DELETE FROM source_files WHERE relpath LIKE '%/index.%' OR relpath LIKE '%/readme.%';
    """,
    # Documents nobody reads now are rendered on their first request, not on every change
    # (feeds.publish.hot): a change to one that is stored marks it stale, and it is made again
    # when next asked for. Its bytes are kept: their entries serve the next render.
    19: """
    ALTER TABLE renditions ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
    """,
    # The archive's newest time (what tombstones and deletions are dated by) is read by every
    # refresh and every document published: from an index, not a scan of every event's page.
    20: """
    CREATE INDEX IF NOT EXISTS events_updated ON events(updated);
    """,
    # An event's entries in one compressed blob (feeds.store.entry_blobs): a column per format held
    # 9 KB rows, one to a 16 KiB page, a third of the table empty (docs/architecture.md).
    # `pack_entry` is that module's `pack_columns`, given to the connection that migrates.
    21: """
    CREATE TABLE entries_v21 (event TEXT PRIMARY KEY, stamp TEXT NOT NULL, packed BLOB NOT NULL);
    INSERT INTO entries_v21 SELECT event, stamp, pack_entry(atom, rss, json, html) FROM entries ORDER BY event;
    DROP TABLE entries;
    ALTER TABLE entries_v21 RENAME TO entries;
    """,
}


def _statements(script: str) -> list[str]:
    """A script cut into statements (triggers hold `;` inside BEGIN ... END)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        out.append(buffer.strip())
    return out
