#!/usr/bin/env python3
"""Generate a synthetic archive tree in the Offstream markdown format, deterministically.

    .venv/bin/python benchmarks/generate_corpus.py --events 400000 --out /tmp/corpus400k

Layout and format follow the real archive (see ../shared/samples/offstream/README.md):

    news/YYYY/MM/D/<slug>.md    one event version per file (day folders unpadded)
    news/YYYY/MM/D/index.md     the day listing, ending with a `Previous Day...` link

Each event page has the `Formats:` line (a few percent are older renderings without it, saying
`### Source:`), the `### [YYYY-MM-D](...)` date line, an optional `#####` heading, the headline,
a summary, `### Sources:` (1-3 sources, usually a `Cover Image`, the last number repeated) and
`### Related:` (1-5 other generated events, with `_Context: ..._`). About a tenth of the events are
version chains: 2-3 files with different slugs in the same folder, the later ones carrying
`### Changes:` as the archive does.

Topics follow a Zipf-like law over a fixed vocabulary of 25,000 names (a few topics with tens of
thousands of events at the default size, a long tail of names with a handful each); ~9,000 days.

Everything derives from `--seed`: the same seed and options give byte-identical files, whatever
`--jobs`. Pages of one day use their own random stream (seed, day), so days can be written in
parallel processes. No network; the vocabulary is in this file.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# ----- vocabulary ----------------------------------------------------------------------------------

COUNTRIES = [
    "Afghanistan",
    "Albania",
    "Algeria",
    "Angola",
    "Argentina",
    "Armenia",
    "Australia",
    "Austria",
    "Azerbaijan",
    "Bahrain",
    "Bangladesh",
    "Belarus",
    "Belgium",
    "Benin",
    "Bolivia",
    "Bosnia",
    "Botswana",
    "Brazil",
    "Bulgaria",
    "Burkina_Faso",
    "Burundi",
    "Cambodia",
    "Cameroon",
    "Canada",
    "Chad",
    "Chile",
    "China",
    "Colombia",
    "Congo",
    "Costa_Rica",
    "Croatia",
    "Cuba",
    "Cyprus",
    "Czechia",
    "Denmark",
    "Djibouti",
    "Ecuador",
    "Egypt",
    "El_Salvador",
    "Eritrea",
    "Estonia",
    "Ethiopia",
    "Fiji",
    "Finland",
    "France",
    "Gabon",
    "Gambia",
    "Georgia",
    "Germany",
    "Ghana",
    "Greece",
    "Guatemala",
    "Guinea",
    "Haiti",
    "Honduras",
    "Hungary",
    "Iceland",
    "India",
    "Indonesia",
    "Iran",
    "Iraq",
    "Ireland",
    "Israel",
    "Italy",
    "Jamaica",
    "Japan",
    "Jordan",
    "Kazakhstan",
    "Kenya",
    "Kosovo",
    "Kuwait",
    "Kyrgyzstan",
    "Laos",
    "Latvia",
    "Lebanon",
    "Lesotho",
    "Liberia",
    "Libya",
    "Lithuania",
    "Luxembourg",
    "Madagascar",
    "Malawi",
    "Malaysia",
    "Maldives",
    "Mali",
    "Malta",
    "Mauritania",
    "Mexico",
    "Moldova",
    "Mongolia",
    "Montenegro",
    "Morocco",
    "Mozambique",
    "Myanmar",
    "Namibia",
    "Nepal",
    "Netherlands",
    "New_Zealand",
    "Nicaragua",
    "Niger",
    "Nigeria",
    "North_Korea",
    "North_Macedonia",
    "Norway",
    "Oman",
    "Pakistan",
    "Panama",
    "Papua_New_Guinea",
    "Paraguay",
    "Peru",
    "Philippines",
    "Poland",
    "Portugal",
    "Qatar",
    "Romania",
    "Russia",
    "Rwanda",
    "Saudi_Arabia",
    "Senegal",
    "Serbia",
    "Sierra_Leone",
    "Singapore",
    "Slovakia",
    "Slovenia",
    "Somalia",
    "South_Africa",
    "South_Korea",
    "South_Sudan",
    "Spain",
    "Sri_Lanka",
    "Sudan",
    "Sweden",
    "Switzerland",
    "Syria",
    "Taiwan",
    "Tajikistan",
    "Tanzania",
    "Thailand",
    "Togo",
    "Tunisia",
    "Turkey",
    "Turkmenistan",
    "Uganda",
    "Ukraine",
    "United_Kingdom",
    "United_States",
    "Uruguay",
    "Uzbekistan",
    "Venezuela",
    "Vietnam",
    "Yemen",
    "Zambia",
    "Zimbabwe",
]
COUNTRIES = [c.replace("_", " ") for c in COUNTRIES]

CITIES = [
    "Aleppo",
    "Almaty",
    "Amman",
    "Amsterdam",
    "Ankara",
    "Athens",
    "Auckland",
    "Baghdad",
    "Baku",
    "Bamako",
    "Bangkok",
    "Barcelona",
    "Beijing",
    "Beirut",
    "Belgrade",
    "Berlin",
    "Bogota",
    "Brussels",
    "Bucharest",
    "Budapest",
    "Buenos_Aires",
    "Cairo",
    "Canberra",
    "Cape_Town",
    "Caracas",
    "Casablanca",
    "Chennai",
    "Chicago",
    "Colombo",
    "Copenhagen",
    "Dakar",
    "Damascus",
    "Dhaka",
    "Doha",
    "Dubai",
    "Dublin",
    "Durban",
    "Geneva",
    "Goiania",
    "Guadalajara",
    "Hanoi",
    "Harare",
    "Havana",
    "Helsinki",
    "Ho_Chi_Minh_City",
    "Hong_Kong",
    "Houston",
    "Islamabad",
    "Istanbul",
    "Jakarta",
    "Jerusalem",
    "Johannesburg",
    "Kabul",
    "Kampala",
    "Karachi",
    "Kathmandu",
    "Khartoum",
    "Kyiv",
    "Kinshasa",
    "Kolkata",
    "Kuala_Lumpur",
    "Lagos",
    "Lahore",
    "La_Paz",
    "Lima",
    "Lisbon",
    "Liverpool",
    "London",
    "Los_Angeles",
    "Luanda",
    "Lyon",
    "Madrid",
    "Manila",
    "Maputo",
    "Marseille",
    "Melbourne",
    "Mexico_City",
    "Miami",
    "Milan",
    "Minsk",
    "Mogadishu",
    "Montreal",
    "Moscow",
    "Mosul",
    "Mumbai",
    "Munich",
    "Nairobi",
    "Naples",
    "New_Delhi",
    "New_York_City",
    "Odesa",
    "Osaka",
    "Oslo",
    "Ottawa",
    "Paris",
    "Perth",
    "Phnom_Penh",
    "Prague",
    "Pyongyang",
    "Quito",
    "Rabat",
    "Raqqa",
    "Riga",
    "Rio_de_Janeiro",
    "Riyadh",
    "Rome",
    "San_Francisco",
    "Santiago",
    "Sao_Paulo",
    "Sarajevo",
    "Seoul",
    "Shanghai",
    "Singapore",
    "Sofia",
    "Stockholm",
    "Sydney",
    "Taipei",
    "Tallinn",
    "Tashkent",
    "Tbilisi",
    "Tehran",
    "Tel_Aviv",
    "Tokyo",
    "Toronto",
    "Tripoli",
    "Tunis",
    "Vancouver",
    "Vienna",
    "Vilnius",
    "Warsaw",
    "Washington",
    "Wellington",
    "Yangon",
    "Yerevan",
    "Zagreb",
    "Zurich",
    "Aden",
    "Basra",
    "Benghazi",
    "Donetsk",
    "Gaza",
    "Herat",
    "Idlib",
    "Kandahar",
    "Kharkiv",
    "Mariupol",
    "Sanaa",
    "Taiz",
]
CITIES = [c.replace("_", " ") for c in CITIES]

FIRST_NAMES = [
    "Abdul",
    "Ahmed",
    "Aisha",
    "Alain",
    "Alejandro",
    "Alexei",
    "Ali",
    "Amina",
    "Ana",
    "Andrzej",
    "Angela",
    "Anna",
    "Antonio",
    "Ashraf",
    "Barack",
    "Benjamin",
    "Boris",
    "Carlos",
    "Catherine",
    "Chen",
    "Cristina",
    "Daniel",
    "David",
    "Dmitry",
    "Elena",
    "Emmanuel",
    "Enrique",
    "Fatima",
    "Fernando",
    "Francois",
    "Gabriel",
    "Giorgia",
    "Gustavo",
    "Hamid",
    "Hassan",
    "Hiroshi",
    "Ibrahim",
    "Imran",
    "Isabel",
    "Ivan",
    "Jacinda",
    "Jair",
    "James",
    "Javier",
    "Jean",
    "Joao",
    "John",
    "Jorge",
    "Jose",
    "Juan",
    "Julia",
    "Justin",
    "Kamala",
    "Karim",
    "Kim",
    "Kofi",
    "Lee",
    "Leila",
    "Liu",
    "Luis",
    "Luiz",
    "Maria",
    "Mario",
    "Marine",
    "Mark",
    "Martin",
    "Mehmet",
    "Michel",
    "Miguel",
    "Mohammed",
    "Mustafa",
    "Nadia",
    "Narendra",
    "Nicolas",
    "Nikol",
    "Olaf",
    "Olena",
    "Omar",
    "Pedro",
    "Pierre",
    "Rahul",
    "Ramzan",
    "Recep",
    "Roberto",
    "Rodrigo",
    "Salma",
    "Samuel",
    "Sebastian",
    "Sergei",
    "Shinzo",
    "Sophie",
    "Stefan",
    "Tariq",
    "Theresa",
    "Thomas",
    "Viktor",
    "Vladimir",
    "Volodymyr",
    "Wang",
    "Xavier",
    "Yasmin",
    "Yoon",
    "Yusuf",
    "Zhang",
]

LAST_NAMES = [
    "Abbas",
    "Ahmadi",
    "Alvarez",
    "Amini",
    "Anderson",
    "Araujo",
    "Assad",
    "Bakr",
    "Barzani",
    "Becker",
    "Bennett",
    "Berset",
    "Biden",
    "Bolsonaro",
    "Borrell",
    "Castillo",
    "Chavez",
    "Costa",
    "Cruz",
    "Dahl",
    "Diaz",
    "Dubois",
    "Duarte",
    "Erdogan",
    "Fernandez",
    "Ferreira",
    "Fischer",
    "Garcia",
    "Ghani",
    "Gomez",
    "Gonzalez",
    "Guterres",
    "Haddad",
    "Hernandez",
    "Hussein",
    "Ibrahim",
    "Jansen",
    "Johnson",
    "Kaczynski",
    "Karimi",
    "Kenyatta",
    "Khan",
    "Kim",
    "Kowalski",
    "Kuznetsov",
    "Lambert",
    "Lopez",
    "Lukashenko",
    "Macron",
    "Maduro",
    "Marin",
    "Martinez",
    "Medvedev",
    "Meloni",
    "Merkel",
    "Modi",
    "Morales",
    "Moreno",
    "Muller",
    "Navalny",
    "Netanyahu",
    "Nguyen",
    "Obrador",
    "Okafor",
    "Orban",
    "Ortega",
    "Park",
    "Pereira",
    "Petrov",
    "Popescu",
    "Putin",
    "Ramaphosa",
    "Ramirez",
    "Rodriguez",
    "Rossi",
    "Ruto",
    "Salvini",
    "Sanchez",
    "Santos",
    "Scholz",
    "Schulz",
    "Sharif",
    "Silva",
    "Singh",
    "Sokolov",
    "Suarez",
    "Sullivan",
    "Tanaka",
    "Torres",
    "Trudeau",
    "Trump",
    "Tusk",
    "Vargas",
    "Wagner",
    "Weber",
    "Wong",
    "Yamamoto",
    "Zelenskyy",
    "Zuma",
]

OFFICES = [
    "President",
    "Prime Minister",
    "Foreign Minister",
    "Defence Minister",
    "opposition leader",
    "Finance Minister",
    "Interior Minister",
    "Chief Justice",
    "central bank governor",
    "Speaker",
]

ADJECTIVES = [
    "National",
    "Democratic",
    "Social",
    "Liberal",
    "Progressive",
    "People's",
    "United",
    "Green",
    "Conservative",
    "Republican",
    "Labour",
    "Socialist",
    "Reform",
    "Popular",
    "Independent",
    "Patriotic",
    "Federal",
    "Free",
    "New",
    "Civic",
]
PARTY_NOUNS = ["Party", "Alliance", "Movement", "Front", "Union", "Congress", "League", "Coalition"]

EVENT_NOUNS = [
    "earthquake",
    "floods",
    "protests",
    "general election",
    "presidential election",
    "wildfires",
    "bombing",
    "cyclone",
    "heat wave",
    "drought",
    "riots",
    "coup attempt",
    "referendum",
    "stampede",
    "train crash",
    "plane crash",
    "ferry disaster",
    "landslide",
    "strike",
    "cholera outbreak",
    "mine collapse",
    "hostage crisis",
    "local elections",
    "budget crisis",
    "hurricane season",
    "volcanic eruption",
]
THEMES = [
    "Politics",
    "Economy",
    "Human rights",
    "Elections",
    "Terrorism",
    "Energy policy",
    "Education",
    "Healthcare",
    "Corruption",
    "Foreign relations",
    "Military",
    "Immigration",
    "Media freedom",
    "LGBT rights",
    "Law",
    "Transport",
    "Agriculture",
    "Public debt",
    "Water supply",
    "Telecommunications",
]
ORG_WORDS = [
    "Bank",
    "Airlines",
    "Petroleum",
    "Telecom",
    "Railways",
    "Motors",
    "Mining",
    "Energy",
    "Broadcasting Corporation",
    "Football Federation",
    "Stock Exchange",
    "Supreme Court",
    "Electoral Commission",
    "Red Crescent",
    "Space Agency",
]

BIG_TOPICS = [
    "Russian invasion of Ukraine",
    "Syrian Civil War",
    "COVID-19 pandemic",
    "Israeli–Palestinian conflict",
    "War in Afghanistan",
    "Donald Trump",
    "Iraq War",
    "Brexit",
    "Climate change",
    "ISIL",
    "European Union",
    "United Nations",
    "Yemeni Civil War",
    "Mexican drug war",
    "Boko Haram insurgency",
    "North Korea and weapons of mass destruction",
    "Arab Spring",
    "Venezuelan presidential crisis",
    "Recep Tayyip Erdoğan",
    "Kashmir conflict",
    "Libyan Civil War",
    "Iran nuclear deal",
    "Hong Kong protests",
    "Euro",
    "Taliban insurgency",
    "Global financial crisis",
    "Darfur conflict",
    "Rohingya genocide",
    "Ebola virus epidemic",
    "Somali Civil War",
    "Tigray War",
    "Sudanese civil war",
]

OUTLETS = [
    ("BBC", "https://www.bbc.com/news/world-{a}-{n}"),
    ("Reuters", "https://www.reuters.com/article/{a}/{s}-id{N}"),
    ("Al Jazeera", "https://www.aljazeera.com/news/{y}/{m}/{d}/{s}"),
    ("The Guardian", "https://www.theguardian.com/world/{y}/{mon}/{d}/{s}"),
    ("Associated Press", "https://apnews.com/article/{s}-{h}"),
    ("CNN", "https://edition.cnn.com/{y}/{m}/{d}/{a}/{s}/index.html"),
    ("Los Angeles Times", "http://www.latimes.com/world/la-fg-{s}-{y}{m}{d}-story.html"),
    ("The New York Times", "https://www.nytimes.com/{y}/{m}/{d}/world/{a}/{s}.html"),
    ("Deutsche Welle", "https://www.dw.com/en/{s}/a-{n}"),
    ("France 24", "https://www.france24.com/en/{a}/{y}{m}{d}-{s}"),
    ("CBS News", "https://www.cbsnews.com/news/{s}/"),
    ("Newsweek", "http://www.newsweek.com/{s}-{n}"),
    ("The Standard", "https://www.standardmedia.co.ke/article/{n}/{s}"),
    ("ABC News", "https://www.abc.net.au/news/{y}-{m}-{d}/{s}/{n}"),
    ("The Hindu", "https://www.thehindu.com/news/international/{s}/article{n}.ece"),
    ("NPR", "https://www.npr.org/{y}/{m}/{d}/{n}/{s}"),
    ("CTV NEWS", "https://www.ctvnews.ca/world/{s}-1.{n}"),
    ("AP and CBS News", "https://www.cbsnews.com/news/{s}/"),
]
IMAGES = [
    "https://ichef.bbci.co.uk/news/1024/cpsprodpb/{H4}/production/_{n}_{h}.jpg",
    "http://www.trbimg.com/img-{h8}/turbine/la-fg-{s}-{y}{m}{d}",
    "https://static01.nyt.com/images/{y}/{m}/{d}/world/{h8}/merlin_{n}-facebookJumbo.jpg",
    "https://www.aljazeera.com/wp-content/uploads/{y}/{m}/{h}.jpg?resize=1200%2C630",
    "https://cbsnews2.cbsistatic.com/hub/i/r/{y}/{m}/{d}/{h}/thumbnail/1200x630/{h8}/{s}.jpg",
    "https://s.france24.com/media/display/{h}/w:1280/p:16x9/{s}.jpg",
]
AREAS = ["africa", "asia", "europe", "latin-america", "middle-east", "us-canada", "australia"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "fifteen", "twenty"]
NUMBER_DIGITS = ["2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "15", "20"]

# (verb synonyms: the first for one version, another for a rewording), object templates
ACTIONS = [
    (["kills", "leaves dead", "claims the lives of"], "at least {num} people"),
    (["injures", "wounds", "leaves injured"], "{num} people including {num2} children"),
    (["announces", "unveils", "presents"], "a plan to {policy}"),
    (["rejects", "dismisses", "refuses"], "calls to {policy}"),
    (["signs", "approves", "enacts"], "a law to {policy}"),
    (["arrests", "detains", "takes into custody"], "{num} suspects linked to the {event}"),
    (["condemns", "denounces", "criticises"], "the {event} in {city}"),
    (["wins", "secures", "claims victory in"], "the {event} with {pct} percent of the vote"),
    (["evacuates", "moves", "relocates"], "thousands of residents from {city}"),
    (["suspends", "halts", "freezes"], "talks with {country} over the {event}"),
    (["meets", "holds talks with", "hosts"], "{person} in {city}"),
    (["resigns after", "steps down after", "quits after"], "the {event}"),
    (["launches", "begins", "starts"], "an investigation into the {event} in {city}"),
    (["recalls", "withdraws", "summons"], "its ambassador to {country}"),
    (["bans", "outlaws", "prohibits"], "{thing} nationwide"),
]
# Who does what: disasters and attackers kill and injure; officials and institutions do the rest.
SUBJECTS_VIOLENT = [
    "A suicide bomber in {city}",
    "An earthquake of magnitude {mag} near {city}",
    "A gunman in {city}",
    "A storm in {country}",
    "Rebels in {country}",
    "Flooding in {city}",
    "A car bomb in {city}",
    "An airstrike on {city}",
]
SUBJECTS = [
    "{country_adj} {office} {first} {last}",
    "{office} {first} {last} of {country}",
    "The government of {country}",
    "Police in {city}",
    "The {org}",
    "A court in {city}",
    "The parliament of {country}",
    "The military of {country}",
    "The {country_adj} foreign ministry",
]
VIOLENT_ACTIONS = 2  # the first ACTIONS take SUBJECTS_VIOLENT
POLICIES = [
    "raise the minimum wage",
    "ban single-use plastics",
    "legalize the recreational use of cannabis",
    "introduce value added tax",
    "end the state of emergency",
    "reform the pension system",
    "cut fuel subsidies",
    "expand mobile internet access",
    "reduce carbon emissions by 2030",
    "hold early elections",
    "restrict foreign ownership of land",
    "lower the voting age to 16",
    "abolish the death penalty",
    "build a border wall",
    "nationalize the oil industry",
]
THINGS = [
    "cryptocurrency mining",
    "the export of rice",
    "public gatherings",
    "Telegram and Instagram",
    "plastic bags",
    "fireworks",
    "the ivory trade",
    "trophy hunting",
    "fishing in the gulf",
    "imports of used cars",
]
TAILS = [
    "",
    "",
    "",
    " amid the {topic}",
    ", according to officials",
    ", state media reports",
    " for the first time since {year}",
    ", the largest since {year}",
    " despite international criticism",
    ", citing {reason}",
]
REASONS = [
    "security concerns",
    "the economic crisis",
    "a shortage of funds",
    "public health",
    "irregularities in the count",
    "shipping industry business interests",
]
SUMMARY_WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "on",
    "with",
    "as",
    "by",
    "after",
    "at",
    "from",
    "that",
    "which",
    "government",
    "officials",
    "said",
    "reported",
    "people",
    "city",
    "country",
    "forces",
    "police",
    "minister",
    "president",
    "state",
    "talks",
    "crisis",
    "week",
    "year",
    "month",
    "region",
    "local",
    "international",
    "national",
    "security",
    "military",
    "economy",
    "election",
    "vote",
    "party",
    "opposition",
    "support",
    "against",
    "during",
    "since",
    "before",
    "more",
    "than",
    "least",
    "some",
    "many",
    "several",
    "thousands",
    "hundreds",
    "new",
    "former",
    "leader",
    "group",
    "according",
    "sources",
    "statement",
    "told",
    "agency",
    "residents",
    "families",
    "victims",
    "rescue",
    "workers",
    "authorities",
    "investigation",
    "report",
    "announced",
    "confirmed",
    "denied",
    "warned",
    "called",
    "demanded",
    "agreed",
]


def _words_adjective(country: str) -> str:
    special = {
        "United States": "U.S.",
        "United Kingdom": "British",
        "China": "Chinese",
        "France": "French",
        "Germany": "German",
        "Russia": "Russian",
        "Japan": "Japanese",
        "India": "Indian",
        "Brazil": "Brazilian",
        "Turkey": "Turkish",
        "Iran": "Iranian",
        "Israel": "Israeli",
        "Ukraine": "Ukrainian",
        "Pakistan": "Pakistani",
        "Egypt": "Egyptian",
        "Kenya": "Kenyan",
        "Mexico": "Mexican",
        "Nigeria": "Nigerian",
        "Spain": "Spanish",
        "Italy": "Italian",
    }
    return special.get(country, country)


def topic_vocabulary(count: int, seed: int) -> list[str]:
    """`count` distinct topic names (distinct after case, diacritics and punctuation are ignored),
    most popular first: hand-picked big topics, then names made from the word lists."""
    rng = random.Random(f"topics:{seed}")
    names: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        key = " ".join(
            re.findall(r"[0-9a-z]+", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower())
        )
        if key and key not in seen:
            seen.add(key)
            names.append(name)

    for name in BIG_TOPICS:
        add(name)
    for c in COUNTRIES[:40]:
        add(c)
    makers = [
        lambda: rng.choice(COUNTRIES),
        lambda: rng.choice(CITIES),
        lambda: f"{rng.choice(THEMES)} of {rng.choice(COUNTRIES)}",
        lambda: f"{rng.choice(COUNTRIES)}–{rng.choice(COUNTRIES)} relations",
        lambda: f"{rng.randint(1995, 2024)} {rng.choice(COUNTRIES)} {rng.choice(EVENT_NOUNS)}",
        lambda: f"{rng.randint(1995, 2024)} {rng.choice(CITIES)} {rng.choice(EVENT_NOUNS)}",
        lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        lambda: (
            f"{rng.choice(ADJECTIVES)} {rng.choice(ADJECTIVES)} {rng.choice(PARTY_NOUNS)} ({rng.choice(COUNTRIES)})"
        ),
        lambda: f"{rng.choice(CITIES)} {rng.choice(ORG_WORDS)}",
        lambda: f"{_words_adjective(rng.choice(COUNTRIES))} {rng.choice(ORG_WORDS)}",
        lambda: f"Hurricane {rng.choice(FIRST_NAMES)} ({rng.randint(1995, 2024)})",
    ]
    while len(names) < count:
        add(rng.choice(makers)())
    return names


def slugify(headline: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", headline).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")[:140].rstrip("-")


# ----- pass 1: the events (what links to what) -----------------------------------------------------


@dataclass
class Plan:
    """Everything pages of one day need from the rest of the corpus. Shared with workers by fork."""

    seed: int
    days: list[dt.date]
    day_start: list[int]  # first event index of each day (events are in day order)
    headlines: list[str]  # current version's headline per event
    slugs: list[str]  # current version's slug per event
    topics: list[tuple[int, ...]]  # topic ids per event; topics[i][0] is the heading when headed[i]
    headed: bytearray
    versions: dict[int, list[tuple[str, str]]]  # older (headline, slug) of chained events, oldest first
    topic_names: list[str]
    topic_events: dict[int, list[int]]  # topic id -> event indices (ascending)
    legacy: bytearray  # older rendering (no Formats line, `### Source:`)


def day_path(day: dt.date) -> str:
    return f"{day.year}/{day.month:02d}/{day.day}"


def day_label(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}-{day.day}"


class Words:
    """Headline pieces drawn from one random stream."""

    def __init__(self, rng: random.Random, topic_names: list[str]) -> None:
        self.rng = rng
        self.topic_names = topic_names

    def fill(self, template: str, topic: int) -> str:
        rng = self.rng
        if "{" not in template:
            return template
        values = {
            "country": rng.choice(COUNTRIES),
            "country_adj": _words_adjective(rng.choice(COUNTRIES)),
            "city": rng.choice(CITIES),
            "office": rng.choice(OFFICES),
            "first": rng.choice(FIRST_NAMES),
            "last": rng.choice(LAST_NAMES),
            "org": f"{rng.choice(CITIES)} {rng.choice(ORG_WORDS)}",
            "num": rng.choice(NUMBER_DIGITS if rng.random() < 0.5 else NUMBER_WORDS),
            "num2": rng.choice(NUMBER_DIGITS),
            "pct": str(rng.randint(30, 79)),
            "policy": rng.choice(POLICIES),
            "thing": rng.choice(THINGS),
            "event": rng.choice(EVENT_NOUNS),
            "person": f"{rng.choice(OFFICES)} {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "mag": f"{rng.randint(50, 79) / 10:.1f}",
            "topic": self.topic_names[topic],
            "year": str(rng.randint(1950, 2015)),
            "reason": rng.choice(REASONS),
        }
        return template.format(**values)

    def headline_parts(self, topic: int) -> tuple[str, int, str, str]:
        """(subject, action index, object, tail): a headline without its verb."""
        rng = self.rng
        action = rng.randrange(len(ACTIONS)) if rng.random() < 0.75 else rng.randrange(VIOLENT_ACTIONS)
        subject = self.fill(rng.choice(SUBJECTS_VIOLENT if action < VIOLENT_ACTIONS else SUBJECTS), topic)
        obj = self.fill(ACTIONS[action][1], topic)
        tail = self.fill(rng.choice(TAILS), topic)
        return subject, action, obj, tail


def _headline(subject: str, verb: str, obj: str, tail: str) -> str:
    return f"{subject} {verb} {obj}{tail}."


def plan(
    events: int, days: int, seed: int, topic_count: int, zipf: float, end: dt.date, progress: bool = False
) -> Plan:
    from tqdm import tqdm

    rng = random.Random(seed)
    names = topic_vocabulary(topic_count, seed)
    cum = list(itertools.accumulate(1.0 / (r + 1.5) ** zipf for r in range(topic_count)))
    calendar = [end - dt.timedelta(days=days - 1 - i) for i in range(days)]
    # Every day has at least one event; later years are busier, and days vary.
    weights = [0.6 + i / days + rng.random() * 0.6 for i in range(days)]
    per_day = [1 if i < events else 0 for i in range(days)]
    for d in rng.choices(range(days), weights=weights, k=max(0, events - days)):
        per_day[d] += 1
    day_start = list(itertools.accumulate([0, *per_day[:-1]]))
    words = Words(rng, names)
    headlines: list[str] = []
    slugs: list[str] = []
    topics: list[tuple[int, ...]] = []
    headed = bytearray(events)
    legacy = bytearray(events)
    versions: dict[int, list[tuple[str, str]]] = {}
    topic_events: dict[int, list[int]] = {}
    count_choices = (1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5)
    i = 0
    bar = tqdm(total=events, unit="event", desc="plan ", disable=not progress, file=sys.stderr, mininterval=0.5)
    for d in range(days):
        bar.update(per_day[d])
        used: set[str] = set()
        for _ in range(per_day[d]):
            picked = rng.choices(range(topic_count), cum_weights=cum, k=rng.choice(count_choices))
            own = tuple(dict.fromkeys(picked))
            chain = 0 if rng.random() >= 0.1 else (3 if rng.random() < 0.3 else 2)
            while True:
                subject, action, obj, tail = words.headline_parts(own[0])
                verbs = ACTIONS[action][0]
                order = rng.sample(range(len(verbs)), len(verbs))
                texts = [_headline(subject, verbs[v], obj, tail) for v in order[: max(1, chain)]]
                if chain == 3:  # the middle version fixes a detail too
                    texts[1] = (
                        texts[1].replace(" in ", " near ", 1)
                        if " in " in texts[1]
                        else texts[1][:-1] + ", reports say."
                    )
                texts.reverse()  # oldest first; the current version is last
                page_slugs = [slugify(t) for t in texts]
                if len(set(page_slugs)) == len(page_slugs) and not used.intersection(page_slugs):
                    break
            used.update(page_slugs)
            headlines.append(texts[-1])
            slugs.append(page_slugs[-1])
            if chain:
                versions[i] = list(zip(texts[:-1], page_slugs[:-1], strict=True))
            topics.append(own)
            headed[i] = rng.random() < 0.75
            legacy[i] = rng.random() < 0.03
            for t in own:
                topic_events.setdefault(t, []).append(i)
            i += 1
    bar.close()
    return Plan(
        seed, calendar, [*day_start, events], headlines, slugs, topics, headed, versions, names, topic_events, legacy
    )


# ----- pass 2: pages of one day ---------------------------------------------------------------------

PLAN: Plan | None = None  # set in the parent before the worker processes fork


def _numbers(n: int) -> list[int]:
    """The archive's numbering: 1, 2, ..., n-1, n-1 (the last number repeats)."""
    if n <= 1:
        return [1] * n
    return [*list(range(1, n)), n - 1]


def _summary(rng: random.Random, headline: str) -> str:
    words = [rng.choice(SUMMARY_WORDS) for _ in range(rng.randint(12, 40))]
    words[0] = words[0].capitalize()
    text = " ".join(words)
    if rng.random() < 0.5:
        second = [rng.choice(SUMMARY_WORDS) for _ in range(rng.randint(8, 25))]
        text += ". " + " ".join(second).capitalize()
    roll = rng.random()
    if roll < 0.04:
        text = text.replace(" ", "&#x20;", 6).replace(" and ", " &amp; ", 1)
    elif roll < 0.08:
        text = text + "&#x2019;s"
    if rng.random() < 0.1:
        return text[: rng.randint(60, max(61, len(text)))] + "..."
    return text + "."


def _source_lines(rng: random.Random, slug: str, day: dt.date, image: bool) -> list[str]:
    fields = {
        "a": rng.choice(AREAS),
        "s": slug[:60].rstrip("-"),
        "n": str(rng.randint(10_000_000, 99_999_999)),
        "N": f"KBN{rng.randint(1, 9)}{rng.choice('ABCDEFGH')}{rng.randint(100, 999)}",
        "h": f"{rng.getrandbits(64):016x}",
        "h8": f"{rng.getrandbits(32):08x}",
        "H4": f"{rng.getrandbits(16):04X}",
        "y": str(day.year),
        "m": f"{day.month:02d}",
        "mon": MONTHS[day.month - 1],
        "d": f"{day.day:02d}",
    }
    picks = rng.sample(OUTLETS, rng.choice((1, 1, 1, 2, 2, 3)))
    items = [(name, url.format(**fields)) for name, url in picks]
    if image:
        items.append(("Cover Image", rng.choice(IMAGES).format(**fields)))
    return [f"{n}. [{name}]({url})" for n, (name, url) in zip(_numbers(len(items)), items, strict=True)]


def _related_lines(rng: random.Random, p: Plan, i: int, count: int) -> tuple[list[str], list[str]]:
    """`count` related items (other events sharing a topic) and the contexts they name, in order."""
    own = p.topics[i]
    events = len(p.headlines)
    targets: list[tuple[int, int]] = []
    chosen = {i}
    for k in range(count):
        t = own[k % len(own)]
        members = p.topic_events[t]
        at = bisect.bisect_left(members, i)
        # Mostly earlier events of the topic (the archive relates to the past), nearby ones first.
        window = members[max(0, at - 40) : at] or members[at + 1 : at + 41]
        candidates = [j for j in window if j not in chosen]
        if candidates:
            j = rng.choice(candidates)
        elif len(chosen) < events:
            j = rng.randrange(events)
            while j in chosen:
                j = rng.randrange(events)
        else:
            break  # a corpus of one event relates to nothing
        chosen.add(j)
        targets.append((j, t))
    lines = []
    names_seen: list[str] = []
    for n, (j, t) in enumerate(targets, 1):
        shared = [t] + [u for u in own if u != t and u in p.topics[j]]
        names = [p.topic_names[u] for u in shared]
        if rng.random() < 0.01:
            names[-1] = names[-1].lower()  # the archive mixes spellings that differ only in case
        names_seen += names
        target_slug = p.slugs[j]
        if j in p.versions and rng.random() < 0.2:
            target_slug = p.versions[j][0][1]  # a link to an old version of the event
        lead = " " if rng.random() < 0.05 else ""
        lines.append(
            f"{n}. [{lead}{p.headlines[j]} ](/news/{day_path(p.days[_day_of(p, j)])}/{target_slug}.md) "
            f"_Context: {', '.join(names)}_"
        )
    return lines, names_seen


def _day_of(p: Plan, i: int) -> int:
    return bisect.bisect_right(p.day_start, i) - 1


def _event_page(
    p: Plan,
    day: dt.date,
    slug: str,
    headline: str,
    heading: str | None,
    summary: str,
    sources: list[str],
    related: list[str],
    changes: list[str],
    legacy: bool,
) -> str:
    folder = f"/news/{day_path(day)}"
    out = []
    if not legacy:
        out.append(
            f"\nFormats: [HTML]({folder}/{slug}.html)  [JSON]({folder}/{slug}.json)  [XML]({folder}/{slug}.xml)  \n\n"
        )
    out.append(f"### [{day_label(day)}]({folder}/index.md)\n\n")
    if heading:
        out.append(f"##### {heading}\n")
    out.append(f"# {headline} \n\n")
    if summary:
        out.append(f"{summary}\n")
    out.append("\n\n")
    if sources:
        out.append("### Source:\n\n" if legacy else "### Sources:\n\n")
        out.append("\n".join(sources))
        out.append("\n\n")
    if changes:
        out.append("### Changes:\n\n")
        out.append("\n".join(changes))
        out.append("\n\n")
    if related:
        out.append("### Related:\n\n")
        out.append("\n".join(related))
        out.append("\n")
    return "".join(out)


def _stamp(day: dt.date, seconds: int) -> str:
    moment = dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def write_day(d: int, root: str) -> tuple[int, int]:
    """Write every page of day `d` and its listing; returns (files, bytes)."""
    p = PLAN
    assert p is not None
    rng = random.Random(f"{p.seed}/{d}")
    day = p.days[d]
    folder = os.path.join(root, "news", str(day.year), f"{day.month:02d}", str(day.day))
    os.makedirs(folder, exist_ok=True)
    files = written = 0
    listing = [
        f"\nFormats: [HTML]({day_path(day)}/index.html)  [JSON]({day_path(day)}/index.json)  "
        f"[XML]({day_path(day)}/index.xml)  \n\n## [{day_label(day)}](/news/{day_path(day)}/index.md)\n\n"
    ]

    def put(name: str, text: str) -> None:
        nonlocal files, written
        data = text.encode("utf-8")
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)
        files += 1
        written += len(data)

    for i in range(p.day_start[d], p.day_start[d + 1]):
        own = p.topics[i]
        heading = p.topic_names[own[0]] if p.headed[i] else None
        headline = p.headlines[i]
        slug = p.slugs[i]
        lead = "  " if rng.random() < 0.03 else ""
        summary = "" if rng.random() < 0.03 else _summary(rng, headline)
        image = rng.random() < 0.85
        sources = [] if rng.random() < 0.05 else _source_lines(rng, slug, day, image)
        related, contexts = _related_lines(rng, p, i, max(len(own), rng.randint(1, 5)))
        older = p.versions.get(i, [])
        history = [*older, (headline, slug)]
        base = rng.randint(6 * 3600, 20 * 3600)
        stamps = [_stamp(day, base + k * rng.randint(600, 30_000)) for k in range(len(history))]
        for v, (text, vslug) in enumerate(history):
            changes = []
            if v:
                marks = [f"_{stamps[0]} (First version)_"] + [f"_{stamps[k]} (Update)_" for k in range(1, v)]
                marks.append("_(Current version)_")
                changes = [
                    f"{n}. [{t} ](/news/{day_path(day)}/{s}.md) {mark}"
                    for n, (t, s), mark in zip(_numbers(v + 1), history[: v + 1], marks, strict=True)
                ]
            last = v == len(history) - 1
            page = _event_page(
                p,
                day,
                vslug,
                lead + text,
                heading,
                summary if last or not summary else summary[: max(40, len(summary) // 2)].rstrip() + "...",
                sources if last else sources[:1],
                related if last else related[: max(1, len(related) - 1)],
                changes,
                bool(p.legacy[i]),
            )
            put(f"{vslug}.md", page)
        entry = f"##### {heading}\n" if heading else ""
        entry += f"### [{headline} ](/news/{day_path(day)}/{slug}.md)\n"
        if summary and rng.random() < 0.6:
            first = summary.split(". ")[0]
            entry += (first if first.endswith("...") else first.rstrip(".") + ".") + "\n"
        else:
            entry += f"_Context: {', '.join(dict.fromkeys(contexts))}_\n"
        listing.append(entry + "\n")
    previous = p.days[d - 1] if d else day - dt.timedelta(days=1)
    listing.append(f"## [Previous Day...](/news/{day_path(previous)}/index.md)\n\n")
    put("index.md", "".join(listing))
    return files, written


def _write_days(task: tuple[Sequence[int], str]) -> tuple[int, int, int]:
    days, root = task
    files = size = 0
    for d in days:
        f, s = write_day(d, root)
        files += f
        size += s
    return len(days), files, size


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


# ----- checking a sample --------------------------------------------------------------------------


def verify(root: Path, p: Plan, sample: int, seed: int) -> list[str]:
    """Parse a sample of pages with feeds' own reader; fold sampled chains. Returns problems."""
    from feeds.chains import Version, chain_root, current_version
    from feeds.ids import page_path
    from feeds.model import DayListing, Page
    from feeds.pages import parse_document

    rng = random.Random(f"verify:{seed}")
    events = len(p.headlines)
    problems: list[str] = []

    def read(rel: str) -> Page | DayListing | None:
        try:
            return parse_document(rel, (root / rel).read_bytes())
        except Exception as exc:
            problems.append(f"{rel}: {exc}")
            return None

    picks = rng.sample(range(events), min(sample, events))
    chained = sorted(p.versions)
    picks += rng.sample(chained, min(max(1, sample // 4), len(chained)))
    for i in picks:
        day = p.days[_day_of(p, i)]
        rels = [f"news/{day_path(day)}/{s}.md" for _, s in p.versions.get(i, [])] + [
            f"news/{day_path(day)}/{p.slugs[i]}.md"
        ]
        pages = [read(rel) for rel in rels]
        if not all(isinstance(pg, Page) for pg in pages):
            problems.append(f"{rels[-1]}: not parsed as an event page")
            continue
        page = pages[-1]
        assert isinstance(page, Page)
        if page.headline != p.headlines[i]:
            problems.append(f"{rels[-1]}: headline {page.headline!r} != {p.headlines[i]!r}")
        expected = {p.topic_names[t].casefold() for t in p.topics[i]}
        if {t.casefold() for t in page.topics} != expected:
            problems.append(f"{rels[-1]}: topics {page.topics} != {sorted(expected)}")
        if not 1 <= len(page.related) <= 5:
            problems.append(f"{rels[-1]}: {len(page.related)} related items")
        if len(pages) > 1:
            versions = [Version.of(pg) for pg in pages if isinstance(pg, Page)]
            for order in (versions, versions[::-1]):
                root_path, current = chain_root(order), current_version(order)
                if root_path != page_path(rels[0]) or current != page_path(rels[-1]):
                    problems.append(f"{rels[-1]}: chain folds to root {root_path}, current {current}")
    for d in rng.sample(range(len(p.days)), min(max(3, sample // 20), len(p.days))):
        rel = f"news/{day_path(p.days[d])}/index.md"
        listing = read(rel)
        if not isinstance(listing, DayListing):
            problems.append(f"{rel}: not parsed as a day listing")
            continue
        want = [
            page_path(f"news/{day_path(p.days[d])}/{p.slugs[i]}") for i in range(p.day_start[d], p.day_start[d + 1])
        ]
        if [e.path for e in listing.entries] != want:
            problems.append(f"{rel}: lists {len(listing.entries)} entries, expected {len(want)}")
    return problems


# ----- command line ---------------------------------------------------------------------------------


def generate(
    out: Path,
    events: int,
    seed: int = 1,
    days: int | None = None,
    topics: int = 25_000,
    zipf: float = 1.0,
    jobs: int | None = None,
    progress: bool = True,
    clean: bool = False,
) -> tuple[Plan, int, int]:
    """Write the corpus under `out`; returns (plan, files, bytes)."""
    from tqdm import tqdm

    global PLAN
    if events < 1:
        raise ValueError("--events must be at least 1")
    days = days or min(9000, max(1, -(-events // 44)))
    days = min(days, events)
    if clean and (out / "news").exists():
        shutil.rmtree(out / "news")
    PLAN = plan(events, days, seed, topics, zipf, dt.date(2024, 6, 30), progress)
    jobs = max(1, jobs or os.cpu_count() or 1)
    tasks = [(chunk, str(out)) for chunk in _chunks(days, 25)]
    files = size = 0
    with tqdm(total=days, unit="day", desc="write", disable=not progress, file=sys.stderr, mininterval=0.5) as bar:
        if jobs == 1 or len(tasks) == 1:
            results: Iterator[tuple[int, int, int]] = map(_write_days, tasks)
            for n, f, s in results:
                files, size = files + f, size + s
                bar.update(n)
        else:
            with mp.get_context("fork").Pool(jobs) as pool:
                for n, f, s in pool.imap_unordered(_write_days, tasks):
                    files, size = files + f, size + s
                    bar.update(n)
    return PLAN, files, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=400_000, help="events (version chains count once; default 400000)"
    )
    parser.add_argument("--out", type=Path, default=Path("corpus"), help="output directory (gets news/...)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--days", type=int, default=None, help="days (default: events/44, at most 9000)")
    parser.add_argument("--topics", type=int, default=25_000, help="topic vocabulary size (default 25000)")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of topic popularity (default 1.0)")
    parser.add_argument("--jobs", type=int, default=None, help="writer processes (default: CPU count)")
    parser.add_argument(
        "--verify", type=int, default=200, metavar="N", help="parse N sampled events after writing (0: skip)"
    )
    parser.add_argument("--clean", action="store_true", help="remove OUT/news first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.out.exists() and (args.out / "news").exists() and not args.clean:
        print(f"note: {args.out}/news exists; files are overwritten, stale ones stay (use --clean)", file=sys.stderr)
    started = time.perf_counter()
    p, files, size = generate(
        args.out, args.events, args.seed, args.days, args.topics, args.zipf, args.jobs, not args.no_progress, args.clean
    )
    elapsed = time.perf_counter() - started
    counts = sorted((len(v) for v in p.topic_events.values()), reverse=True)
    chains = len(p.versions)
    print(
        f"{args.events} events ({chains} version chains, {sum(len(v) for v in p.versions.values())} older versions) "
        f"on {len(p.days)} days ({p.days[0]} .. {p.days[-1]}): {files} files, {size / 1e6:.1f} MB in {elapsed:.1f} s"
    )
    print(
        f"topics: {len(counts)} distinct; largest {counts[:5]}; "
        f"{sum(1 for c in counts if c >= 1000)} with >= 1000 events, {sum(1 for c in counts if c <= 5)} with <= 5"
    )
    if args.verify:
        try:
            problems = verify(args.out, p, args.verify, args.seed)
        except ImportError as exc:
            print(f"verify: skipped, feeds is not importable ({exc}); run with the project's venv", file=sys.stderr)
            return 0
        if problems:
            for line in problems[:20]:
                print(f"verify: {line}", file=sys.stderr)
            print(f"verify: {len(problems)} problems", file=sys.stderr)
            return 1
        print("verify: a sample of pages, chains and day listings parse with feeds.pages and fold with feeds.chains")
    return 0


if __name__ == "__main__":
    sys.exit(main())
