"""An opt-out as the desk stores and shows it, whatever platform it came from."""

from __future__ import annotations

from dataclasses import dataclass

# Column order used by the cache, the tables and every export of an opt-out list.
RECORD_COLUMNS: tuple[str, ...] = (
    "DateOptOut",
    "Email",
    "Phone",
    "FirstName",
    "LastName",
    "LangCode",
    "ContactId",
    "SurveyId",
    "Source",
)


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    """One opt-out. Text fields are "" when the platform did not send them.

    `date_opt_out` is kept as the ISO-8601 UTC text the platform sent (CheckMarket sends up to 7
    fractional digits, more than `datetime` holds), so nothing is lost on a round trip.
    """

    date_opt_out: str
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    lang_code: str = ""
    contact_id: int | None = None
    survey_id: int | None = None
    source: str = ""

    @property
    def dedupe_key(self) -> str:
        """Identity of the opt-out on its platform: ContactId + DateOptOut when the platform
        gives a contact id, else the identifiers themselves."""
        if self.contact_id is not None:
            return f"c:{self.contact_id}|{self.date_opt_out}"
        return f"i:{self.email.strip().lower()}|{self.phone.strip()}|{self.date_opt_out}"

    def as_row(self) -> tuple[object, ...]:
        """Values in RECORD_COLUMNS order."""
        return (
            self.date_opt_out,
            self.email,
            self.phone,
            self.first_name,
            self.last_name,
            self.lang_code,
            self.contact_id,
            self.survey_id,
            self.source,
        )
