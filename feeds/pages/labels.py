"""The words the archive writes around its content, in every language it publishes: one table.

Offstream publishes the same page shape in English (`nixworks/public`) and Chinese
(`back-up/public-zh`); only the labels differ. The readers recognise every label of every
language, whatever the source's configured language (a label is never also another language's
content). A new language is new rows here, not new code.

Checked against the whole history of `back-up/public-zh` (1,764 commits): its event pages say
`### 信息来源:` and `### 有关:` and nothing else; a source line may end with its image,
`1. [新华网](...) [IMG](...)`; related items say `_消息: A, B_` (until mid-2019 `_上下文: A, B_`),
the same prefix the older day listings use; day listings end with `## [前一天...](...)`. It has
no Changes section and no change markers: a reworded event there is a new page that names no
predecessor. Its context lists are separated by ", " like the English ones; `、` and `，` are
part of names (`联合国教育、科学及文化组织`, the film `色，戒`), never separators.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["sources", "related", "changes", "cover image", "context", "previous day", "first", "update", "current"]

# (role, language, the label as the archive writes it). Section names are matched whatever their
# case and followed by `:` (or the full-width `：`); the others as written.
LABELS: tuple[tuple[Role, str, str], ...] = (
    ("sources", "en", "Sources"),
    ("sources", "en", "Source"),  # older renderings
    ("sources", "zh", "信息来源"),
    ("related", "en", "Related"),
    ("related", "zh", "有关"),
    ("changes", "en", "Changes"),
    ("cover image", "en", "Cover Image"),  # a source item of its own
    ("cover image", "zh", "IMG"),  # a second link on a source's line
    ("context", "en", "Context"),
    ("context", "zh", "消息"),
    ("context", "zh", "上下文"),  # until mid-2019
    ("previous day", "en", "Previous Day"),
    ("previous day", "zh", "前一天"),
    # Change markers: `_2017-09-28 10:30:05 (First version)_`.
    ("first", "en", "First version"),
    ("update", "en", "Update"),
    ("current", "en", "Current version"),
)

SectionRole = Literal["sources", "related", "changes"]
SECTION_ROLES: tuple[SectionRole, ...] = ("sources", "related", "changes")


def labels(role: Role) -> tuple[str, ...]:
    """Every label of `role`, in every language, in table order."""
    return tuple(label for r, _, label in LABELS if r == role)


def section_key(name: str) -> str:
    """How a section name is compared: case and runs of spaces don't count."""
    return " ".join(name.split()).casefold()


SECTIONS: dict[str, SectionRole] = {section_key(label): role for role in SECTION_ROLES for label in labels(role)}
COVER_IMAGE_NAMES: frozenset[str] = frozenset(label.casefold() for label in labels("cover image"))
