"""A demo CRM export to reconcile against the sandbox: what an operator's spreadsheet looks like.

Built from a sandbox's own opt-out list so a comparison lands rows in every bucket: contacts who
already opted out (written the way a CRM holds them: other case, stray spaces, national phone
formats), new contacts, invalid cells, repeated rows, phones Excel stored as numbers, and a few
near-misses (a Gmail dot, a `gmial.com` typo) that show up as suggestions. Deterministic for a
seed. A title block sits above the header, as in real exports, so header detection shows too.

It is a contact list, not a list of opt-outs: its Newsletter column says who unsubscribed. Most
people who opted out on the platform are "Unsubscribed" there too, some are still "Subscribed"
(the CRM missed it: Missing from CRM), and a few new contacts unsubscribed in the CRM only (To
submit); everyone else is subscribed and must never be submitted.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FILE_NAME = "demo-crm-export.xlsx"
HEADERS = ["Customer no", "First name", "Last name", "E-mail", "Mobile", "Country",
           "Newsletter", "Last order"]
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"


def demo_crm_rows(optouts: list[dict[str, Any]], *, contacts: int = 2000,
                  seed: int = 11) -> list[list[Any]]:
    """Rows under HEADERS; about a quarter are people on `optouts`."""
    from optout_desk.sandbox.data import Generator

    rng = random.Random(seed)
    known = [o for o in optouts if o.get("Email") or o.get("Phone")]
    fresh = [row.data for row in Generator(seed + 1000, 0, datetime(2026, 11, 1, tzinfo=UTC))
             .generate(contacts)]
    rows: list[list[Any]] = []
    for n in range(contacts):
        draw = rng.random()
        if draw < 0.25 and known:
            person = _as_crm_holds_it(rng.choice(known), rng)
            status = UNSUBSCRIBED if rng.random() < 0.8 else SUBSCRIBED
        elif draw < 0.27 and known:
            person = _near_miss(rng.choice(known), rng)
            status = UNSUBSCRIBED
        elif draw < 0.30:
            person = _invalid(fresh[n], rng)
            status = UNSUBSCRIBED if rng.random() < 0.5 else SUBSCRIBED
        elif draw < 0.32 and rows:
            rows.append(list(rng.choice(rows)))  # the same contact exported twice
            rows[-1][0] = 100_000 + n
            continue
        else:
            person = dict(fresh[n])
            status = UNSUBSCRIBED if rng.random() < 0.08 else SUBSCRIBED
        rows.append(_crm_row(100_000 + n, person, status, rng))
    return rows


def write_demo_crm(path: Path, optouts: list[dict[str, Any]], *, contacts: int = 2000,
                   seed: int = 11) -> Path:
    """Write the demo export as xlsx (a title block, then the header on row 4)."""
    import openpyxl

    from optout_desk.files.export import atomic_path

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Contacts"
    sheet.append(["Acme Retail CRM - contact export"])
    sheet.append(["Exported 2026-11-22 by the marketing team"])
    sheet.append([])
    sheet.append(HEADERS)
    for row in demo_crm_rows(optouts, contacts=contacts, seed=seed):
        sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        book.save(partial)
    return path


def _crm_row(number: int, person: dict[str, Any], status: str,
             rng: random.Random) -> list[Any]:
    order = datetime(2026, 11, 1) - timedelta(days=rng.randrange(700))
    return [number, person.get("FirstName") or "", person.get("LastName") or "",
            person.get("Email") or None, person.get("Phone") or None,
            person.get("CountryId") or "", status, order.date()]


def _as_crm_holds_it(optout: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    person = dict(optout)
    email = person.get("Email") or ""
    if email and rng.random() < 0.3:
        email = email.title() if rng.random() < 0.5 else f" {email.upper()} "
    person["Email"] = email
    phone = person.get("Phone") or ""
    digits = "".join(c for c in phone if c.isdigit())
    if phone.startswith("+32") and rng.random() < 0.5:
        person["Phone"] = float(digits)  # Excel turned the column into numbers
    elif phone.startswith("+") and rng.random() < 0.3:
        person["Phone"] = "00" + digits
    return person


def _near_miss(optout: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Almost an opt-out's address: a person should decide, the desk never does."""
    person = dict(optout)
    email = person.get("Email") or "noah.miller@gmail.com"
    local, _, domain = email.partition("@")
    if domain == "gmail.com" and "." in local and rng.random() < 0.5:
        email = f"{local.replace('.', '')}@{domain}"
    elif domain == "gmail.com":
        email = f"{local}@gmial.com"
    else:
        email = f"{local}+news@{domain}"
    person["Email"] = email
    person["Phone"] = None
    return person


def _invalid(person: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    broken = dict(person)
    choice = rng.randrange(3)
    if choice == 0:
        broken["Email"], broken["Phone"] = "n/a", None
    elif choice == 1:
        broken["Email"] = (person.get("Email") or "someone@example.com").split("@")[0] + "@"
        broken["Phone"] = None
    else:
        # What Excel shows for a long number in a General column: the last digits are gone.
        broken["Email"], broken["Phone"] = None, f"3.2470{rng.randrange(10)}E+10"
    return broken
