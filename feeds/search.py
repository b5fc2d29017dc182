"""Full-text search of events: what is indexed (headline, summary, topic names, source names), how
text is folded, and how a reader's query becomes an SQLite FTS5 query. Pure.

FTS5's unicode61 tokenizer folds case and Latin diacritics itself (`remove_diacritics 2`). Chinese
has no spaces between words: Han characters are indexed one by one (traditional folded to
simplified, as topic keys are) and a query's Han run is searched as a phrase of its characters,
so 苏丹 finds 蘇丹 inside a longer run.
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus

from feeds.ids import HAN, simplified
from feeds.model import Page

TOKENIZE = "unicode61 remove_diacritics 2"
MAX_QUERY_CHARS = 200
MAX_TERMS = 12
_HAN_CHAR = re.compile(f"({HAN.pattern})")
# A term of a query: a quoted phrase, or a run of anything but spaces and quotes.
_TERM = re.compile(r'"([^"]*)"|([^\s"]+)')
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Text as it is indexed: unchanged, but for Han characters (simplified, one by one)."""
    if not HAN.search(text):
        return text
    return _HAN_CHAR.sub(r" \1 ", simplified(text))


def indexed(page: Page, topics: tuple[str, ...]) -> tuple[str, str, str]:
    """(headline, summary, names: topics and sources) of a page, folded."""
    names = " ; ".join([*topics, *(s.name for s in page.sources)])
    return fold(page.headline), fold(page.summary), fold(names)


def parse(query: str) -> tuple[str, str]:
    """(canonical query, FTS5 MATCH expression). Every term must match (`OR` between two terms
    makes either do); "quoted words" match as a phrase; `word*` matches words starting with it.
    Raises ValueError naming what is wrong."""
    query = " ".join(query.split())
    if not query:
        raise ValueError("q: say what to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"q: at most {MAX_QUERY_CHARS} characters")
    canonical: list[str] = []
    expression: list[str] = []
    for match in _TERM.finditer(query):
        phrase, word = match.group(1), match.group(2)
        if word == "OR":
            if expression and expression[-1] != "OR":
                canonical.append("OR")
                expression.append("OR")
            continue
        prefix = bool(word and word.endswith("*"))
        words = _WORD.findall(fold(phrase if phrase is not None else word))
        if not words:
            continue
        shown = " ".join(_WORD.findall((phrase if phrase is not None else word.rstrip("*")).casefold()))
        canonical.append(f'"{shown}"' if phrase is not None or len(words) > 1 else shown + ("*" if prefix else ""))
        expression.append('"' + " ".join(words) + '"' + ("*" if prefix else ""))
    while expression and expression[-1] == "OR":
        expression.pop()
        canonical.pop()
    if not expression:
        raise ValueError("q: no words to search for")
    if len([e for e in expression if e != "OR"]) > MAX_TERMS:
        raise ValueError(f"q: at most {MAX_TERMS} terms")
    return " ".join(canonical), " ".join(expression)


def query_string(canonical: str) -> str:
    """The one query string a search is served at, and its documents' self links say: encoded as
    a browser's form sends it (spaces as `+`, `*` kept), so the search box reaches it directly."""
    return "q=" + quote_plus(canonical, safe="*")
