"""Identifiers: keys, rules, Excel damage, and the properties matching relies on."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optout_desk.core.identifiers import (
    IdKind,
    PhoneNormaliser,
    cell_text,
    normalise_email,
    normalise_emails,
    normalise_phone,
    normalise_token,
)


@pytest.mark.parametrize(
    ("text", "key", "rule"),
    [
        ("alice@example.com", "alice@example.com", "email, exact"),
        (" Alice.Smith@Example.COM\u00a0", "alice.smith@example.com",
         "email, case and spaces ignored"),
        ("x@Bücher.de", "x@xn--bcher-kva.de",
         "email, case and spaces ignored, domain in IDNA form"),
    ],
)
def test_email_keys_and_rules(text: str, key: str, rule: str) -> None:
    ident = normalise_email(text)
    assert (ident.kind, ident.key, ident.rule, ident.original) == (IdKind.EMAIL, key, rule, text)


@pytest.mark.parametrize(
    "text", ["", "   ", "bad@", "@example.com", "a@@b.com", "a b@c.com", "x@y.test"]
)
def test_invalid_emails_say_why(text: str) -> None:
    ident = normalise_email(text)
    assert ident.key is None and not ident.valid
    assert ident.problem


def test_nfc_variants_of_an_email_share_a_key() -> None:
    composed = "zo\u00eb@example.com"
    decomposed = "zoe\u0308@example.com"
    assert normalise_email(composed).key == normalise_email(decomposed).key == composed


@pytest.mark.parametrize(
    ("value", "region", "key"),
    [
        ("+32 470 12 34 56", "BE", "+32470123456"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("0470/12.34.56", "BE", "+32470123456"),
        ("0032 470 12 34 56", "BE", "+32470123456"),
        ("+1-202-555-0117", "BE", "+12025550117"),
        ("(202) 555-0117", "US", "+12025550117"),
        ("+39 06 1234 5678", "US", "+390612345678"),  # Italy keeps its leading zero
        ("+44 20 7946 0958", "NL", "+442079460958"),
    ],
)
def test_phone_keys(value: str, region: str, key: str) -> None:
    ident = normalise_phone(value, region)
    assert ident.key == key
    assert ident.original == value
    assert key in ident.rule and region in ident.rule


def test_phone_rule_names_region_and_original() -> None:
    assert normalise_phone("0470 12 34 56", "BE").rule == (
        "phone +32470123456 from '0470 12 34 56', region BE"
    )
    assert normalise_phone("+32470123456", "BE").rule == "phone, exact E.164"


def test_excel_number_cell_with_lost_leading_zero_is_repaired_and_says_so() -> None:
    ident = normalise_phone(470123456.0, "BE")
    assert ident.key == "+32470123456"
    assert ident.repair is not None and "leading 0" in ident.repair
    assert ident.original == "470123456"


def test_excel_number_cell_that_lost_its_plus_is_repaired_and_says_so() -> None:
    ident = normalise_phone(32470123456.0, "BE")
    assert ident.key == "+32470123456"
    assert ident.repair is not None and "'+' was missing" in ident.repair


def test_float_text_is_repaired() -> None:
    ident = normalise_phone("32470123456.0", "BE")
    assert ident.key == "+32470123456"
    assert ident.repair is not None and "stored it as a number" in ident.repair


def test_full_precision_scientific_notation_is_repaired() -> None:
    ident = normalise_phone("3.2470123456E+10", "BE")
    assert ident.key == "+32470123456"
    assert ident.repair is not None and "scientific notation" in ident.repair


def test_scientific_notation_with_lost_digits_is_invalid_not_guessed() -> None:
    ident = normalise_phone("3.24701E+10", "BE")
    assert ident.key is None
    assert ident.problem is not None and "last 5 digits are lost" in ident.problem


def test_number_cell_with_more_than_15_digits_is_invalid() -> None:
    ident = normalise_phone(1234567890123456789.0, "BE")
    assert ident.key is None and ident.problem is not None and "15 digits" in ident.problem


def test_decimal_number_is_not_a_phone() -> None:
    assert normalise_phone(3.5, "BE").key is None


def test_us_number_cell_is_not_reported_as_a_lost_zero() -> None:
    ident = normalise_phone(2025550117.0, "US")
    assert ident.key == "+12025550117"
    assert ident.repair == "Excel stored it as a number"


@pytest.mark.parametrize("value", [None, "", "  ", "abc", "+999 123", "12", True])
def test_unusable_phones_are_invalid_with_a_reason(value: object) -> None:
    ident = normalise_phone(value, "BE")  # type: ignore[arg-type]
    assert ident.key is None and ident.problem


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown phone region"):
        PhoneNormaliser("XX")


def test_tokens_keep_their_text() -> None:
    assert normalise_token(" tok-1 ").key == "tok-1"
    assert normalise_token("   ").key is None


def test_cell_text_reads_like_excel() -> None:
    assert cell_text(32470123456.0) == "32470123456"
    assert cell_text(1.25) == "1.25"
    assert cell_text(None) == ""
    assert cell_text(True) == "TRUE"


# ------------------------------------------------------------------ properties

REGIONS = ["BE", "NL", "FR", "DE", "US", "GB", "IT", "ES"]


def _example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    examples = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                examples.append((region, number))
    return examples


EXAMPLES = _example_numbers()


@st.composite
def formatted_variants(draw: st.DrawFn) -> tuple[str, str, str]:
    region, number = draw(st.sampled_from(EXAMPLES))
    style = draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ]
        )
    )
    text = phonenumbers.format_number(number, style)
    separator = draw(st.sampled_from([" ", "-", ".", "", "  "]))
    text = text.replace(" ", separator) if style != phonenumbers.PhoneNumberFormat.E164 else text
    padding = draw(st.sampled_from(["", " ", "\u00a0", "\t"]))
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return region, padding + text + padding, expected


@settings(max_examples=300, deadline=None)
@given(formatted_variants())
def test_formatting_variants_of_one_number_give_one_key(case: tuple[str, str, str]) -> None:
    region, text, expected = case
    assert normalise_phone(text, region).key == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), formatted_variants().map(lambda case: case[1])),
       st.sampled_from(REGIONS))
def test_phone_normalisation_is_idempotent_and_keeps_the_original(text: str, region: str) -> None:
    ident = normalise_phone(text, region)
    assert ident.original == text
    if ident.key is not None:
        again = normalise_phone(ident.key, region)
        assert again.key == ident.key
        # The key is region-independent: it is already international.
        assert normalise_phone(ident.key, "US").key == ident.key
    else:
        assert ident.problem


EMAILS = st.builds(
    lambda local, domain, tld, case, pad: pad + (f"{local}@{domain}.{tld}").swapcase()
    if case else pad + f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}[a-zA-Z0-9]", fullmatch=True),
    st.from_regex(r"[a-zA-Zà-ü][a-zA-Z0-9à-ü-]{0,10}[a-zA-Z0-9]", fullmatch=True),
    st.sampled_from(["com", "be", "de", "org"]),
    st.booleans(),
    st.sampled_from(["", " ", "\u00a0"]),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(EMAILS, st.text(max_size=40)))
def test_email_normalisation_is_idempotent_and_keeps_the_original(text: str) -> None:
    ident = normalise_email(text)
    assert ident.original == text
    if ident.key is not None:
        assert normalise_email(ident.key).key == ident.key
    else:
        assert ident.problem


@settings(max_examples=200, deadline=None)
@given(EMAILS)
def test_case_and_padding_never_change_an_email_key(text: str) -> None:
    base = normalise_email(text).key
    assert normalise_email(f"  {text.upper()} ").key == base
    assert normalise_email(text.lower()).key == base


# Addresses the bulk checks must get exactly right: plain ones (the bulk path) mixed with every
# way to fall off it — dots in the wrong place, two '@', special-use and odd domains, non-ASCII,
# quoted local parts, over-long parts, separators and padding.
ODD_EMAILS = st.sampled_from([
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@@example.com", "a@b@example.com",
    "@example.com", "a@", "a@.example.com", "a@example.com.", "a@example..com", "a@-x.com",
    "a@x-.com", "a@example.c", "a@example.123", "a@localhost", "a@example.test", "a@x.local",
    "a@invalid", '"a b"@example.com', "José@exämple.com", "a@EXAMPLE.COM", "a\x00b@example.com",
    "x" * 65 + "@example.com", "a@" + "b" * 64 + ".com", "", " ", "\u00a0a@example.com",
    "a!#$%&'*+/=?^_`{|}~-@example.com", "a@exa!mple.com", "a@xn--bcher-kva.example",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(EMAILS, ODD_EMAILS, st.text(max_size=20)), max_size=30),
       st.lists(EMAILS, max_size=30))
def test_bulk_email_normalisation_equals_one_by_one(mixed: list[str], plain: list[str]) -> None:
    # Each odd value alone among plain ones: the whole-column checks must catch it.
    for values in (mixed, plain, *([*plain, value] for value in mixed)):
        assert normalise_emails(values) == [normalise_email(v) for v in values]


PHONE_VALUES = st.one_of(
    st.none(),
    st.sampled_from([
        "+32470123456", "+32 470 12 34 56", "0470 12 34 56", "0470/12.34.56", "0032470123456",
        "+1 202-555-0143", "(202) 555-0143", "2025550143", "+33 6 12 34 56 78", "06 12 34 56 78",
        "+44 7700 900123", "07700 900123", "+39 320 123 4567", "3201234567", "+49 151 23456789",
        "3.2470123456E+10", "3.24701E+10", "32470123456.0", "+32470123456\n", " +32470123456 ",
        "+", "0", "00", "+0", "+999123", "+32 47", "٠٤٧٠١٢٣٤٥٦", "+32470１２３４５６", "12",
        "e", "+32470123456789012", "tel: +32470123456",
    ]),
    st.sampled_from([32470123456.0, 470123456.0, 2025550143.0, 12025550143.0, 3.5, -32470123456.0,
                     1e15, 1e16, float("inf"), float("nan"), 0.0, 32470123456, 470123456, True]),
    st.floats(min_value=1e6, max_value=1e14).map(float.__floor__).map(float),
    st.text(alphabet="+0123456789 -./()", max_size=18),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PHONE_VALUES, max_size=40), st.sampled_from(["BE", "US", "FR", "GB", "IT", "DE"]))
def test_bulk_phone_normalisation_equals_one_by_one(values: list[object], region: str) -> None:
    one_by_one = PhoneNormaliser(region)
    expected = [None if v is None else one_by_one(v) for v in values]  # type: ignore[arg-type]
    assert PhoneNormaliser(region).many(values) == expected  # type: ignore[arg-type]


def test_phone_metadata_can_be_loaded_ahead_and_changes_no_result() -> None:
    from optout_desk.core import identifiers

    before = [identifiers.PhoneNormaliser("BE")(v) for v in
              ("+32470123456", "0470 12 34 56", 32470123456, "+4915112345678", "12")]
    identifiers.load_phone_metadata()
    assert identifiers._national_patterns.cache_info().currsize == len(
        identifiers._COUNTRY_CODES)
    after = [identifiers.PhoneNormaliser("BE")(v) for v in
             ("+32470123456", "0470 12 34 56", 32470123456, "+4915112345678", "12")]
    assert after == before
    assert [i.key for i in after][:4] == ["+32470123456", "+32470123456", "+32470123456",
                                          "+4915112345678"]


def test_an_email_text_of_a_megabyte_is_refused_without_the_full_validator(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """email_validator takes a quarter of a second over a megabyte (one webhook body held the
    receiver's event loop that long); such a text is refused on its length first. Near the
    limit the validator still speaks."""
    import email_validator

    near = normalise_email("a" * 300 + "@example.com")
    assert near.key is None and near.problem is not None and "too long" in near.problem

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the full validator ran")

    monkeypatch.setattr(email_validator, "validate_email", never)
    huge = normalise_email("a" * 999_000 + "@example.com")
    assert huge.key is None
    assert huge.problem == ("not a valid email address: it is 999,012 characters long (an "
                            "email address has at most 254)")
    assert [i.key for i in normalise_emails(["b" * 5000 + "@x.com", "ok@x.com"])] == [
        None, "ok@x.com"]
