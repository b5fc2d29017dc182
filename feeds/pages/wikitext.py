"""MediaWiki markup the Chinese archive (`back-up/public-zh`) kept in its text, reduced to text. Pure.

Language-variant markup (MediaWiki's LanguageConverter) names one thing once per script or region:
`-{zh-cn:戛纳; zh-hk:康城; zh-tw:坎城;}-` is read as the configured variant's text (`zh-cn`:
戛纳), else the first of that variant's fallbacks the markup has (MediaWiki's own chains), else
the first text it gives. `-{text}-` (text shielded from conversion) is its text; flags
(`-{A|...}-`, `-{R|...}-`) are read as their body, and those that show nothing (`H`, `T`, `-`)
show nothing. External links the archive wrote with `//` turned into `--`
(`[http:--news.sina.com.cn-... sina]`, with a `date=十一月 2017` left by a citation template after
it) and internal links (`[[a|b]]`, `[[a]]`) are their text.
"""

from __future__ import annotations

import dataclasses
import re

from feeds.model import DayListing, Page

# MediaWiki's Chinese variants and, for each, where it looks when a rule does not name it
# (languages/LanguageZh: $variantfallbacks).
FALLBACKS: dict[str, tuple[str, ...]] = {
    "zh": ("zh-hans", "zh-hant", "zh-cn", "zh-tw", "zh-hk", "zh-sg", "zh-mo", "zh-my"),
    "zh-hans": ("zh-cn", "zh-sg", "zh-my"),
    "zh-hant": ("zh-tw", "zh-hk", "zh-mo"),
    "zh-cn": ("zh-hans", "zh-sg", "zh-my"),
    "zh-sg": ("zh-hans", "zh-cn", "zh-my"),
    "zh-my": ("zh-hans", "zh-sg", "zh-cn"),
    "zh-tw": ("zh-hant", "zh-hk", "zh-mo"),
    "zh-hk": ("zh-hant", "zh-mo", "zh-tw"),
    "zh-mo": ("zh-hant", "zh-hk", "zh-tw"),
}
VARIANTS = tuple(FALLBACKS)
DEFAULT_VARIANT = "zh-cn"

# Innermost first: a rule holds no `-{` of its own.
_RULE = re.compile(r"-\{((?:(?!-\{)[^}]|\}(?!-))*)\}-", re.DOTALL)
_FLAGS = re.compile(r"^\s*([A-Za-z\-;\s]{1,12})\|")
_SILENT_FLAGS = frozenset("HT-")
_CASE = re.compile(r"^\s*(zh(?:-[A-Za-z]+)?)\s*:(.*)$", re.DOTALL)
# Never a markdown link's text (`[https://x](https://x)`): no `(` may follow. A citation template's
# leftover `date=十一月 2017` right after the link (2,053 times in the archive) goes with it.
_EXTERNAL = re.compile(r"\[(?:https?|ftp):(?://|--)[^\s\[\]]*(?:\s+([^\[\]]*))?\](?:date=[^\s\[\]()]+ \d{4})?(?!\()")
_INTERNAL = re.compile(r"\[\[([^\[\]|]*)(?:\|([^\[\]]*))?\]\](?!\()")


def _choose(body: str, variant: str) -> str:
    """The text a rule's body shows in `variant`."""
    flags = _FLAGS.match(body)
    if flags:
        if set(flags[1].replace(";", "").replace(" ", "").upper()) & _SILENT_FLAGS:
            return ""
        body = body[flags.end() :]
    cases: dict[str, str] = {}
    order: list[str] = []
    for part in body.split(";"):
        case = _CASE.match(part)
        if case and case[1].lower() in FALLBACKS:
            if "=>" in case[2]:
                continue  # a one-way rule (`A=>zh-cn:B`) for text elsewhere: it shows nothing here
            cases.setdefault(case[1].lower(), case[2].strip())
            order.append(case[1].lower())
        elif order and part.strip():
            cases[order[-1]] += ";" + part  # a `;` inside a variant's text
        elif not order:
            return body.strip()  # `-{text}-`: shielded from conversion, shown as written
    if not order:
        return ""
    for code in (variant, *FALLBACKS.get(variant, ())):
        if code in cases:
            return cases[code]
    return cases[order[0]]


def resolve_variants(value: str, variant: str = DEFAULT_VARIANT) -> str:
    """`value` with every language-variant rule replaced by its text in `variant`."""
    while "-{" in value:
        resolved = _RULE.sub(lambda m: _choose(m[1], variant), value)
        if resolved == value:
            break  # an unclosed `-{`: left as written (no rule to read)
        value = resolved
    return value


def reduce_links(value: str) -> str:
    """`value` with wiki links as their text: `[[a|b]]` -> b, `[[a]]` -> a, `[http:--x y]` -> y."""
    if "[[" in value:
        value = _INTERNAL.sub(lambda m: m[2] if m[2] is not None else m[1], value)
    if "[http" in value or "[ftp" in value:
        value = _EXTERNAL.sub(lambda m: m[1] or "", value)
    return value


def plain(value: str, variant: str = DEFAULT_VARIANT) -> str:
    """Text without wiki markup: variants resolved first (a rule may hold a link)."""
    # Plain substring tests first: most pages hold no markup, and every page is read through here.
    return reduce_links(resolve_variants(value, variant) if "{" in value else value)  # one char: memchr


def plain_page(page: Page, variant: str = DEFAULT_VARIANT) -> Page:
    """Every text field of `page` without wiki markup (a page read from JSON or XML)."""

    def p(value: str) -> str:
        return " ".join(plain(value, variant).split()) if value else value

    return dataclasses.replace(
        page,
        headline=p(page.headline),
        heading=p(page.heading) or None if page.heading else None,
        summary=plain(page.summary, variant),
        sources=tuple(dataclasses.replace(s, name=p(s.name)) for s in page.sources),
        related=tuple(
            dataclasses.replace(r, headline=p(r.headline), contexts=tuple(c for c in map(p, r.contexts) if c))
            for r in page.related
        ),
        changes=tuple(dataclasses.replace(c, headline=p(c.headline)) for c in page.changes),
    )


def plain_listing(listing: DayListing, variant: str = DEFAULT_VARIANT) -> DayListing:
    """A day listing's text without wiki markup (a listing read from JSON or XML)."""

    def p(value: str) -> str:
        return " ".join(plain(value, variant).split()) if value else value

    entries = tuple(
        dataclasses.replace(
            e,
            headline=p(e.headline),
            heading=p(e.heading) or None if e.heading else None,
            summary=p(e.summary),
            contexts=tuple(c for c in map(p, e.contexts) if c),
        )
        for e in listing.entries
    )
    return dataclasses.replace(listing, entries=entries)
