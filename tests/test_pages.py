"""The readers: the sample page field by field, JSON/XML agreement, malformed and hostile input."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from feeds.errors import ParseError
from feeds.ids import event_guid, page_path, topic_slug
from feeds.model import Page, Related, SourceLink
from feeds.pages import parse_document
from tests.conftest import DATA, EVENT_PAGE, OFFSTREAM, SAMPLE_RELPATH

SAMPLE_PATH = (
    "/news/2017/09/28/the-islamic-state-of-iraq-and-the-levant-releases-footage-which-apparently-show-its-"
    "leader-abu-bakr-al-baghdadi-urging-his-followers-to-expa"
)


def sample() -> Page:
    page = parse_document(SAMPLE_RELPATH, EVENT_PAGE.read_bytes())
    assert isinstance(page, Page)
    return page


def test_sample_page_every_field() -> None:
    page = sample()
    assert page.path == SAMPLE_PATH
    assert page.date == dt.date(2017, 9, 28)
    assert page.heading == "Syrian Civil War"
    assert page.headline == (
        "The Islamic State of Iraq and the Levant releases footage which apparently show its leader Abu Bakr "
        'al-Baghdadi urging his followers to expand their attacks against "crusaders and apostates".'
    )
    assert page.summary == (
        "The extremist group released what it said was a new recording of its leader, Abu Bakr Baghdadi, a move "
        "apparently intended to counter rumors of his death and rally followers after battlefield losses."
    )
    assert page.sources == (
        SourceLink(
            "Los Angeles Times", "http://www.latimes.com/world/la-fg-islamic-state-abu-bakr-20170928-story.html"
        ),
    )
    assert page.image == "http://www.trbimg.com/img-59cd8d63/turbine/la-fg-islamic-state-abu-bakr-20170928"
    assert len(page.related) == 5
    assert page.related[0] == Related(
        "The Syrian Observatory for Human Rights says ISIL leader Abu Bakr al-Baghdadi is confirmed dead, according "
        "to information from tribal leaders close to ISIL in the Deir ez-Zor Governorate. In June, Russia said it had "
        '"most likely" killed al-Baghdadi and several other high profile ISIL leaders in an airstrike but provided '
        "no evidence.",
        "/news/2017/07/11/the-syrian-observatory-for-human-rights-says-isil-leader-abu-bakr-al-baghdadi-is-confirmed-"
        "dead-according-to-information-from-tribal-leader.md",
        ("Abu Bakr al-Baghdadi", "ISIL", "Syrian Civil War"),
        ambiguous=True,  # markdown's comma-separated parts: the store decides which form one name
    )
    assert [r.contexts for r in page.related[1:]] == [("ISIL", "Syrian Civil War")] * 4
    assert page.related[3].headline == (
        "Syrian government troops and allied militia retake Abu Kamal, ISIL's last urban stronghold in Syria."
    )
    assert page.changes == ()
    assert page.topics == ("Syrian Civil War", "Abu Bakr al-Baghdadi", "ISIL")
    assert [topic_slug(t) for t in page.topics] == ["syrian-civil-war", "abu-bakr-al-baghdadi", "isil"]


def test_sample_id_is_stable_and_from_the_path() -> None:
    page = sample()
    assert page_path("/news/2017/09/28/" + SAMPLE_PATH.rsplit("/", 1)[1] + ".md") == page.path
    assert event_guid(page.path) == event_guid(sample().path)
    assert event_guid(page.path).startswith("urn:uuid:")


@pytest.mark.parametrize("name", ["event-page.json", "event-page.xml"])
def test_json_and_xml_readers_agree_with_markdown(name: str) -> None:
    relpath = SAMPLE_RELPATH.replace(".md", "." + name.rsplit(".", 1)[1])
    page = parse_document(relpath, (DATA / name).read_bytes())
    assert isinstance(page, Page)
    # JSON and XML give each context name whole; markdown gives the parts of a list.
    assert not any(r.ambiguous for r in page.related)
    markdown = sample()
    assert page == replace(markdown, related=tuple(replace(r, ambiguous=False) for r in markdown.related))
    assert page.topics == markdown.topics


def test_topic_slugs_fold_latin_keep_other_scripts_and_never_empty() -> None:
    assert topic_slug("Recep Tayyip Erdoğan") == "recep-tayyip-erdogan"
    assert topic_slug("Euro") == topic_slug("euro") == "euro"
    assert topic_slug("北京") == "北京"  # the name itself, not its pinyin (tests/test_topics.py)
    assert topic_slug("臺灣") == topic_slug("台湾") == "台湾"  # Chinese in its simplified form
    assert topic_slug("🙂").startswith("topic-")
    assert topic_slug("🙂") == topic_slug("🙂")


@pytest.mark.parametrize(
    ("relpath", "data", "field"),
    [
        ("news/2020/01/1/a.md", b"# headline only, no date line\n", "date"),
        ("news/2020/01/1/a.md", b"### [2020-01-1](/news/2020/01/1/index.md)\n\nno headline\n", "headline"),
        ("news/2020/01/1/a.md", b"### [2020-13-1](/x)\n# h\n", "date"),
        ("news/2020/01/1/a.md", b"\xff\xfe\x00bad", None),
        ("news/2020/01/1/a.md", b"### [2020-01-1](/x)\n# h\n### Sources:\n\nnot an item\n", "sources"),
        ("news/2020/01/1/a.json", b"{not json", None),
        ("news/2020/01/1/a.json", b'{"date": "2020-01-01"}', "headline"),
        (
            "news/2020/01/1/a.json",
            b'{"date": "2020-01-01", "headline": "h", "sources": [{"name": 3}]}',
            "sources[0].name",
        ),
        (
            "news/2020/01/1/a.json",
            b'{"date": "2020-01-01", "headline": "h", "changes": [{"headline": "h", "url": "u", "kind": "x"}]}',
            "changes[0].kind",
        ),
        ("news/2020/01/1/a.xml", b"<event><headline>h</headline></event>", "date"),
        ("news/2020/01/1/a.xml", b"<other/>", None),
        ("news/2020/01/1/a.xml", b"<event date='2020-01-01'", None),
        ("elsewhere/a.md", b"### [2020-01-1](/x)\n# h\n", None),
    ],
)
def test_malformed_documents_name_file_and_field(relpath: str, data: bytes, field: str | None) -> None:
    with pytest.raises(ParseError) as info:
        parse_document(relpath, data, origin=f"/tmp/{relpath}")
    assert info.value.origin == f"/tmp/{relpath}"
    assert info.value.field == field
    assert relpath in str(info.value)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<event date="2020-01-01"><headline>&lol3;</headline></event>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE event [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<event date="2020-01-01"><headline>&xxe;</headline></event>"""


@pytest.mark.parametrize("data", [BOMB, EXTERNAL])
def test_xml_entities_are_refused(data: bytes) -> None:
    with pytest.raises(ParseError, match="unsafe XML refused"):
        parse_document("news/2020/01/1/a.xml", data)


def test_every_bundled_example_parses() -> None:
    from tests.conftest import EXAMPLE

    files = sorted((EXAMPLE / "news").rglob("*.*"))
    assert len(files) >= 40
    for file in files:
        parse_document(file.relative_to(EXAMPLE).as_posix(), file.read_bytes())


def test_every_real_sample_page_gives_exactly_the_expected_fields() -> None:
    """Every page of the Offstream samples, field by field (expectations checked by hand against
    the raw files; see tests/data/offstream-pages.json)."""
    import json

    from feeds.model import DayListing
    from tests.conftest import OFFSTREAM

    expected = json.loads((DATA / "offstream-pages.json").read_text("utf-8"))
    files = sorted(p.relative_to(OFFSTREAM).as_posix() for p in OFFSTREAM.rglob("*.md") if p.parent != OFFSTREAM)
    assert sorted(expected) == files
    for rel, want in expected.items():
        doc = parse_document(rel, (OFFSTREAM / rel).read_bytes())
        if want["kind"] == "day":
            assert isinstance(doc, DayListing), rel
            got = {
                "kind": "day",
                "path": doc.path,
                "date": doc.date.isoformat(),
                "previous": doc.previous,
                "entries": [[e.heading, e.headline, e.path, e.summary, list(e.contexts)] for e in doc.entries],
            }
        else:
            assert isinstance(doc, Page), rel
            got = {
                "kind": "event",
                "path": doc.path,
                "date": doc.date.isoformat(),
                "heading": doc.heading,
                "headline": doc.headline,
                "summary": doc.summary,
                "sources": [[s.name, s.url] for s in doc.sources],
                "image": doc.image,
                "related": [[r.headline, r.url, list(r.contexts)] for r in doc.related],
                "changes": [
                    [c.headline, c.url, c.kind, c.timestamp.isoformat() if c.timestamp else None] for c in doc.changes
                ],
                "topics": list(doc.topics),
            }
        assert got == want, rel


def test_urls_keep_query_parameters_that_look_like_entities() -> None:
    page = parse_document(
        "news/2020/01/1/a.md",
        b"### [2020-01-1](/x)\n# h\n### Sources:\n\n1. [A](http://a.test/?x=1&para=2&amp;y=3)\n1. [Cover Image](//img.test/a.jpg?w=1&amp;h=2)\n",
    )
    assert isinstance(page, Page)
    assert page.sources[0].url == "http://a.test/?x=1&para=2&y=3"
    assert page.image == "https://img.test/a.jpg?w=1&h=2"


# ----- cover images: the first usable URL wins ----------------------------------------------------

COVER = "http://www.trbimg.com/img-59cd8d63/turbine/la-fg-islamic-state-abu-bakr-20170928"
PROTOCOL_RELATIVE = OFFSTREAM / "news/2017/12/31/the-canadian-right-wing-party-national-advancement-disbands.md"
# Cover Image URLs no reader can fetch: the archive's own relative links (this page's HTML rendering,
# as its Formats line gives it), another scheme, no host, nothing.
UNUSABLE = [
    f"/{SAMPLE_RELPATH.removesuffix('.md')}.html",
    "javascript:alert(1)",
    "http:///no-host.jpg",
    "",
]


def with_covers(before: list[str], after: list[str]) -> bytes:
    """The real sample page with more `Cover Image` lines around its own (a rendering that wrote
    one per source)."""
    own = f"1. [Cover Image]({COVER})\n"
    text = EVENT_PAGE.read_text("utf-8")
    assert own in text

    def items(urls: list[str]) -> str:
        return "".join(f"1. [Cover Image]({url})\n" for url in urls)

    return text.replace(own, items(before) + own + items(after)).encode("utf-8")


def test_a_protocol_relative_cover_image_is_taken_as_https() -> None:
    page = parse_document(PROTOCOL_RELATIVE.relative_to(OFFSTREAM).as_posix(), PROTOCOL_RELATIVE.read_bytes())
    assert isinstance(page, Page)
    assert page.image == "https://assets2.prnewswire.com/designimages/cnw_en_facebook_sharing_logo.png"


@pytest.mark.parametrize("unusable", UNUSABLE)
def test_the_first_usable_cover_image_wins_in_markdown(unusable: str) -> None:
    later = parse_document(SAMPLE_RELPATH, with_covers([], [unusable]))
    earlier = parse_document(SAMPLE_RELPATH, with_covers([unusable], []))
    both = parse_document(SAMPLE_RELPATH, with_covers([unusable], ["https://img.test/second.jpg"]))
    for page in (later, earlier, both):
        assert isinstance(page, Page)
        assert page.image == COVER
        assert page.sources == sample().sources  # Cover Image lines are never sources
    relative_only = parse_document(SAMPLE_RELPATH, with_covers([], []).replace(COVER.encode(), unusable.encode()))
    assert isinstance(relative_only, Page) and relative_only.image is None


def test_the_json_and_xml_readers_apply_the_same_rule() -> None:
    import json

    doc = json.loads((DATA / "event-page.json").read_text("utf-8"))
    path = SAMPLE_RELPATH.removesuffix(".md")
    for given, taken in [("//img.test/a.jpg", "https://img.test/a.jpg"), (UNUSABLE[0], None), (COVER, COVER)]:
        page = parse_document(path + ".json", json.dumps({**doc, "image": given}).encode())
        assert isinstance(page, Page) and page.image == taken, given
    xml = (DATA / "event-page.xml").read_text("utf-8")
    own = f'<image url="{COVER}"/>'
    assert own in xml
    for around in ([UNUSABLE[0]], [UNUSABLE[1], "//img.test/b.jpg"]):
        variants = [
            xml.replace(own, "".join(f'<image url="{u}"/>' for u in around) + own),
            xml.replace(own, own + "".join(f'<image url="{u}"/>' for u in around)),
        ]
        firsts = ["https://img.test/b.jpg" if "//img.test/b.jpg" in around else COVER, COVER]
        for variant, first in zip(variants, firsts, strict=True):
            page = parse_document(path + ".xml", variant.encode())
            assert isinstance(page, Page) and page.image == first, around
