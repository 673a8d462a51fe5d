"""Realistic generated opt-outs for the CheckMarket simulator, reproducible from a seed.

People from several countries and languages, emails with the mess real lists have (upper case,
stray spaces), phones in mixed formats (international, dashed, national, none), a year of
DateOptOut with a visible spike after a "campaign", and survey membership so survey-scoped
lists differ from the account-wide one. Some records are email-only, some phone-only. Each
generated person has their own email address and phone number (as contacts of one account do):
a drawn address or number already taken is made unique without another random draw, so a seed
gives the same data as before wherever nothing collided.

Dates are kept as integer ticks (100 ns, like .NET) so ordering and filters are exact; the JSON
text trims trailing zeros of the fraction, as the vendor's own samples do ("…01.033Z").
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_TICKS = 86_400 * TICKS_PER_SECOND

# (lang, country, calling code, trunk prefix, mobile prefixes, national digits,
#  first names, last names, email domains)
_PEOPLE: tuple[tuple[str, str, str, str, tuple[str, ...], int, tuple[str, ...],
                     tuple[str, ...], tuple[str, ...]], ...] = (
    ("en", "US", "1", "", ("202555", "312555", "415555"), 10,
     ("James", "Olivia", "Liam", "Emma", "Noah", "Ava", "William", "Sophia", "Mason", "Mia"),
     ("Smith", "Johnson", "Brown", "Taylor", "Miller", "Davis", "Wilson", "Moore"),
     ("gmail.com", "outlook.com", "yahoo.com", "example.com")),
    ("en", "GB", "44", "0", ("7700900",), 10,
     ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Freya"),
     ("Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Walker"),
     ("gmail.com", "btinternet.com", "example.co.uk")),
    ("nl", "BE", "32", "0", ("470", "475", "486", "494"), 9,
     ("Daan", "Emma", "Sem", "Julia", "Lucas", "Mila", "Wout", "Lotte"),
     ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "De Smet"),
     ("telenet.be", "proximus.be", "gmail.com", "skynet.be")),
    ("nl", "NL", "31", "0", ("61", "62", "65"), 9,
     ("Sem", "Tess", "Levi", "Sara", "Finn", "Zoë", "Bram", "Fleur"),
     ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser"),
     ("ziggo.nl", "kpnmail.nl", "gmail.com", "hotmail.nl")),
    ("fr", "FR", "33", "0", ("6", "7"), 9,
     ("Louis", "Camille", "Gabriel", "Léa", "Jules", "Chloé", "Hugo", "Manon"),
     ("Martin", "Bernard", "Dubois", "Thomas", "Lefèvre", "Dupont", "Moreau"),
     ("orange.fr", "free.fr", "gmail.com", "laposte.net")),
    ("fr", "BE", "32", "0", ("472", "478", "495"), 9,
     ("Arthur", "Louise", "Victor", "Alice", "Théo", "Inès"),
     ("Lambert", "Dupont", "Renard", "Leclercq", "Simon"),
     ("skynet.be", "gmail.com", "voo.be")),
    ("de", "DE", "49", "0", ("151", "160", "170", "176"), 11,
     ("Lukas", "Hannah", "Leon", "Lea", "Finn", "Anna", "Jonas", "Marie"),
     ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner"),
     ("web.de", "gmx.de", "t-online.de", "gmail.com")),
    ("es", "ES", "34", "", ("6", "7"), 9,
     ("Hugo", "Lucía", "Martín", "Sofía", "Pablo", "María", "Álvaro", "Paula"),
     ("García", "Fernández", "González", "Rodríguez", "López", "Martínez"),
     ("gmail.com", "hotmail.es", "telefonica.net")),
    ("it", "IT", "39", "", ("320", "333", "347", "393"), 10,
     ("Leonardo", "Giulia", "Francesco", "Aurora", "Alessandro", "Sofia", "Lorenzo"),
     ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo"),
     ("libero.it", "gmail.com", "virgilio.it", "tiscali.it")),
)
# Relative weight of each population above.
_WEIGHTS = (20, 8, 14, 10, 12, 5, 12, 9, 10)
_OPTOUT_SOURCES = (1, 1, 1, 2, 8, 64)
_POPULATION = tuple(p for p, w in zip(_PEOPLE, _WEIGHTS, strict=True) for _ in range(w))


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "")


@dataclass(slots=True)
class Row:
    """One opt-out as the simulator keeps it: the API JSON fields plus what it needs to serve
    them fast (ticks for order and filters, survey ids, a cached JSON fragment)."""

    ticks: int
    contact_id: int
    data: dict[str, Any]
    surveys: tuple[int, ...] = ()
    email_key: str = ""
    phone_key: str = ""
    fragment: bytes | None = field(default=None, repr=False)


@lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")


def format_ticks(ticks: int, *, trim: bool = True) -> str:
    """Ticks since 1970 as ISO-8601 UTC; `trim` drops trailing zeros of the fraction."""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    day, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{_day_text(day)}{hours:02d}:{minutes:02d}:{seconds:02d}"
    digits = f"{fraction:07d}"
    if trim:
        digits = digits.rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def ticks_of(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def _pick(rng: random.Random, items: Sequence[Any]) -> Any:
    """rng.choice without its per-call overhead (100k rows per start add up)."""
    return items[int(rng.random() * len(items))]


def _below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def survey_ids(count: int) -> list[int]:
    """The survey ids of a simulated account: stable, realistic-looking numbers."""
    return [210_101 + 37 * i for i in range(count)]


def phone_key(text: str) -> str:
    """The simulator's matching key for a submitted phone: digits with the country code.
    (The simulator has no region to resolve national numbers, so those match as digits.)"""
    digits = "".join(ch for ch in text if ch.isdigit())
    stripped = text.strip()
    if stripped.startswith("+"):
        return "+" + digits
    if stripped.startswith("00"):
        return "+" + digits[2:]
    return digits


def email_key(text: str) -> str:
    return text.strip().lower()


class Generator:
    """Makes opt-out rows; `generate` for the initial account, `more` for later arrivals."""

    def __init__(self, seed: int, surveys: int, end: datetime) -> None:
        self._rng = random.Random(seed)
        self._surveys = survey_ids(surveys)
        self._end_ticks = ticks_of(end)
        self._next_contact = 50_000_000 + self._rng.randrange(1_000_000)
        # Precomputed ASCII forms: the generator runs 100k times per start, keep it cheap.
        self._ascii = {n: _ascii(n) for p in _PEOPLE for n in (*p[6], *p[7])}
        self._emails_taken: set[str] = set()
        self._phones_taken: set[str] = set()

    def generate(self, count: int) -> list[Row]:
        """`count` rows spread over the year before `end`, sorted by DateOptOut then ContactId."""
        rng = self._rng
        span = 365 * _DAY_TICKS
        start = self._end_ticks - span
        # The campaign: a survey sent ~10 weeks before `end` made opt-outs spike for a few days.
        campaign_at = self._end_ticks - 70 * _DAY_TICKS
        campaign_survey = self._surveys[0] if self._surveys else None
        rows: list[Row] = []
        previous = start
        for _ in range(count):
            draw = rng.random()
            if draw < 0.12:
                ticks = campaign_at + int(rng.expovariate(1.0) * 0.8 * _DAY_TICKS)
                in_campaign = True
            elif draw < 0.14:
                ticks = previous  # a bulk action: several opt-outs share one DateOptOut
                in_campaign = False
            else:
                ticks = start + int(rng.random() * span)
                in_campaign = False
            ticks = min(ticks, self._end_ticks)
            previous = ticks
            rows.append(self._row(ticks, campaign_survey if in_campaign else None))
        rows.sort(key=lambda r: (r.ticks, r.contact_id))
        return rows

    def more(self, count: int, after_ticks: int) -> list[Row]:
        """`count` rows dated strictly after `after_ticks`, a few seconds apart."""
        rows = []
        ticks = after_ticks
        for _ in range(count):
            ticks += 1 + _below(self._rng, 5 * TICKS_PER_SECOND)
            rows.append(self._row(ticks, None))
        return rows

    def next_contact_id(self) -> int:
        self._next_contact += 1 + _below(self._rng, 3)
        return self._next_contact

    def _row(self, ticks: int, survey: int | None) -> Row:
        rng = self._rng
        people = _POPULATION[_below(rng, len(_POPULATION))]
        lang, country, code, trunk, prefixes, length, firsts, lasts, domains = people
        first = _pick(rng, firsts)
        last = _pick(rng, lasts)
        kind = rng.random()
        email = ""
        phone = ""
        e_key = ""
        p_key = ""
        if kind < 0.85:  # 15 % phone-only
            email, e_key = self._email(first, last, domains)
        if kind > 0.30:  # ~30 % email-only
            phone, p_key = self._phone(code, trunk, prefixes, length)
        contact_id = self.next_contact_id()
        surveys: tuple[int, ...]
        if survey is not None:
            surveys = (survey,)
        elif self._surveys and rng.random() < 0.85:
            first_survey = _pick(rng, self._surveys)
            second = _pick(rng, self._surveys) if rng.random() < 0.2 else first_survey
            surveys = tuple(sorted({first_survey, second}))
        else:
            surveys = ()
        data: dict[str, Any] = {
            "DateOptOut": format_ticks(ticks),
            "LangCode": lang,
            "ContactId": contact_id,
            "FirstName": first,
            "LastName": last,
            "Email": email if email else (None if rng.random() < 0.5 else ""),
            "Phone": phone if phone else None,
            "CountryId": country,
            "OptoutSourceId": _pick(rng, _OPTOUT_SOURCES),
            "IsOptedOut": True,
        }
        return Row(ticks, contact_id, data, surveys, e_key, p_key)

    def _email(self, first: str, last: str, domains: tuple[str, ...]) -> tuple[str, str]:
        rng = self._rng
        f = self._ascii[first]
        la = self._ascii[last]
        style = rng.random()
        if style < 0.5:
            local = f"{f}.{la}{1 + _below(rng, 998)}"
        elif style < 0.8:
            local = f"{f[0]}{la}{10 + _below(rng, 9989)}"
        else:
            local = f"{f}{1950 + _below(rng, 56)}.{la[:3]}{_below(rng, 99)}"
        domain = _pick(rng, domains)
        email = f"{local}@{domain}"
        suffix = 1
        while email in self._emails_taken:  # another person has it: not a random re-draw
            suffix += 1
            email = f"{local}.{suffix}@{domain}"
        self._emails_taken.add(email)
        key = email
        mess = rng.random()
        if mess < 0.05:
            email = email.title()  # "John.Doe12@Gmail.Com": typed by a person
        elif mess < 0.08:
            email = f" {email} "  # pasted with spaces
        return email, key

    def _phone(self, code: str, trunk: str, prefixes: tuple[str, ...],
               length: int) -> tuple[str, str]:
        rng = self._rng
        prefix = _pick(rng, prefixes)
        rest = length - len(prefix)
        if code == "1":  # fictional 555-01xx numbers, as in the vendor's sample
            national = prefix + f"01{_below(rng, 100):02d}"
        else:
            national = prefix + f"{_below(rng, 10 ** rest):0{rest}d}"
        e164 = f"+{code}{national}"
        while e164 in self._phones_taken:  # another person has it: the next free number
            national = str(int(national) + 1).zfill(len(national))
            e164 = f"+{code}{national}"
        self._phones_taken.add(e164)
        style = rng.random()
        if style < 0.35:
            text = e164
        elif style < 0.65:
            groups = [national[:3], *(national[i:i + 2] for i in range(3, len(national), 2))]
            text = f"+{code} " + " ".join(groups)
        elif style < 0.8:
            text = f"+{code}-{national[:3]}-{national[3:6]}-{national[6:]}"
        elif code == "1":
            text = f"({national[:3]}) {national[3:6]}-{national[6:]}"
        else:
            text = f"{trunk}{national}"  # national form: only right with the country known
        return text, e164
