"""Which two context parts are one place name: Wikipedia's "place, first-level region" titles.

The archive's context lists are the Wikipedia articles a story links, comma-separated without
quoting, so "Austin, Texas" (one article) reads like "Mumbai, India" (two). Wikipedia titles
places in the United States, Canada and Australia "place, state/province/territory" (its naming
conventions USPLACE, CANPLACE, AUSPLACE), but elsewhere by the bare name ("Mumbai", "Bali"), and a
country is never the second half of a title. So a part naming one of those first-level regions
(ISO 3166-2, from pycountry) completes the place before it, unless that place is a region or
country itself (a list of states), an article "... of <region or country>", not a proper name,
or one of the cities those conventions title alone. Leaf module: imports nothing from the package. Pure.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re

import pycountry

# The region types whose places Wikipedia titles "place, region" (ISO 3166-2 types).
_CONVENTIONS = {"US": {"State"}, "CA": {"Province", "Territory"}, "AU": {"State", "Territory"}}
# Cities those conventions title alone (the AP Stylebook's dateline cities for the United States,
# CANPLACE's and AUSPLACE's big cities): "Houston, Texas" in a list is "Houston" and "Texas".
_STANDALONE = frozenset(
    name.casefold()
    for name in (
        *("Atlanta", "Baltimore", "Boston", "Chicago", "Cincinnati", "Cleveland", "Dallas", "Denver", "Detroit"),
        *("Honolulu", "Houston", "Indianapolis", "Las Vegas", "Los Angeles", "Miami", "Milwaukee", "Minneapolis"),
        *("New Orleans", "New York City", "Oklahoma City", "Philadelphia", "Pittsburgh", "St. Louis"),
        *("Salt Lake City", "San Antonio", "San Diego", "San Francisco", "Seattle", "Washington"),
        *("Calgary", "Edmonton", "Montreal", "Ottawa", "Quebec City", "Toronto", "Vancouver", "Winnipeg"),
        *("Adelaide", "Brisbane", "Canberra", "Hobart", "Melbourne", "Perth", "Sydney"),
    )
)
# Lower-case words a place name may hold ("Stratford-upon-Avon", "Port of Spain", "Isle of Wight").
_JOINERS = frozenset(
    ("of", "the", "and", "upon", "on", "in", "de", "la", "le", "les", "du", "des", "del", "di", "da", "y")
)
_YEAR = re.compile(r"^[12][0-9]{3}")
# Names this rule by the gazetteer's version: a store resolved by another is resolved again.
PLACE_RULE = f"place-region/pycountry-{importlib.metadata.version('pycountry')}"


@functools.cache
def _regions() -> frozenset[str]:
    """Casefolded names of the regions that complete a place name; a region that is also a country
    ("Georgia") is left out: "Tbilisi, Georgia" is two articles."""
    countries = _countries()
    return frozenset(
        name
        for code, types in _CONVENTIONS.items()
        for sub in pycountry.subdivisions.get(country_code=code) or ()  # type: ignore[no-untyped-call]
        if sub.type in types and (name := sub.name.casefold()) not in countries
    )


@functools.cache
def _regions_or_countries() -> frozenset[str]:
    return _regions() | _countries()


@functools.cache
def _countries() -> frozenset[str]:
    names: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            if value := getattr(country, attr, None):
                names.add(str(value).casefold())
    return frozenset(names)


def is_region(part: str) -> bool:
    """Whether a part names a first-level region whose places Wikipedia titles "place, region"."""
    return part.strip().casefold() in _regions()


def _proper_place(part: str) -> bool:
    words = part.split()
    if not words or not words[0][:1].isupper() or _YEAR.match(part):
        return False
    folded = part.casefold()
    if folded in _STANDALONE or folded in _regions() or folded in _countries():
        return False
    # "Law of Alaska", "Governor of Texas": an article about the region, not a place in it.
    if " of " in folded and folded.rsplit(" of ", 1)[1] in _regions_or_countries():
        return False
    # A place name has no numbers ("Area 51, Nevada" is two articles).
    return all((w[:1].isupper() and not any(c.isdigit() for c in w)) or w.casefold() in _JOINERS for w in words)


def place_pair(place: str, region: str) -> bool:
    """Whether "place, region" is one name: `region` is a first-level region of a country whose
    places Wikipedia titles that way, and `place` a proper name that is no region, country or
    city titled alone ("Austin, Texas", "Shelbyville, Indiana"; not "Mumbai, India", "Bali,
    Indonesia", "Houston, Texas", "California, Texas")."""
    return is_region(region) and _proper_place(place.strip())
