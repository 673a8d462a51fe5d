"""Delimited text files (csv, tsv, txt): encoding detection, delimiter sniffing, parsing.

Encodings: a BOM decides (UTF-8, UTF-16 LE/BE); without one, UTF-8 if the whole file decodes
as UTF-8, else Windows-1252 (what Excel on Windows writes for "CSV"), else Latin-1. Delimiter:
whichever of `,` `;` tab `|` splits the first lines into the most consistent number (> 1) of
fields, quotes respected. Every cell is the text as written; an empty cell is None.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from optout_desk.core.errors import BadInputError

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_LINES = 50


@dataclass
class TextTable:
    rows: list[list[str | None]]
    encoding: str
    delimiter: str


def read_text_table(path: Path) -> TextTable:
    text, encoding = decode(path.name, path.read_bytes())
    delimiter = sniff_delimiter(text, prefer_tab=path.suffix.lower() == ".tsv")
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        rows: list[list[str | None]] = [
            [cell if cell != "" else None for cell in record] for record in reader
        ]
    except csv.Error as exc:  # e.g. a field larger than the csv module's limit
        raise BadInputError(f"'{path.name}' could not be read as a text table: {exc}.") from None
    return TextTable(rows, encoding, delimiter)


def decode(name: str, data: bytes) -> tuple[str, str]:
    """The file's text and the encoding used; BadInputError for binary content."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise BadInputError(
                    f"'{name}' says it is {encoding.upper()} text but is not; save it again as "
                    "CSV UTF-8."
                ) from None
    head = data[:4096]
    if head.count(b"\x00") > len(head) // 4 and len(head) >= 4:
        # UTF-16 without a BOM: ASCII text has a NUL in every other byte.
        encoding = "utf-16-le" if head[1::2].count(b"\x00") > head[0::2].count(b"\x00") else (
            "utf-16-be"
        )
        try:
            return _refuse_binary(name, data.decode(encoding)), encoding
        except UnicodeDecodeError:
            raise _binary(name) from None
    if b"\x00" in data:
        raise _binary(name)
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            return _refuse_binary(name, data.decode(encoding)), encoding
        except UnicodeDecodeError:
            continue
    raise _binary(name)  # pragma: no cover - latin-1 decodes every byte


def _refuse_binary(name: str, text: str) -> str:
    sample = text[:8192]
    controls = sum(1 for char in sample if char < " " and char not in "\t\r\n")
    if controls > max(2, len(sample) // 100):
        raise _binary(name)
    return text


def _binary(name: str) -> BadInputError:
    return BadInputError(
        f"'{name}' is not a text table (it holds binary data); export the list as .xlsx or .csv."
    )


def sniff_delimiter(text: str, *, prefer_tab: bool = False) -> str:
    """The delimiter that splits the first lines most consistently into more than one field."""
    lines = text.lstrip("\ufeff").splitlines()[:_SAMPLE_LINES]
    sample = [line for line in lines if line.strip()]
    if not sample:
        return "\t" if prefer_tab else ","
    best, best_score = ("\t" if prefer_tab else ","), (0.0, 0)
    for delimiter in DELIMITERS:
        counts = [len(record) for record in csv.reader(sample, delimiter=delimiter)]
        multi = [count for count in counts if count > 1]
        if not multi:
            continue
        mode = max(set(multi), key=multi.count)
        # Share of lines with the commonest field count, then that count itself.
        score = (multi.count(mode) / len(counts), mode)
        if prefer_tab and delimiter == "\t":
            score = (score[0] + 0.01, score[1])
        if score > best_score:
            best, best_score = delimiter, score
    return best
