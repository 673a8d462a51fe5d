"""Delimited text files (csv, tsv, txt): encoding detection, delimiter sniffing, parsing.

Encodings: a BOM decides (UTF-8, UTF-16 LE/BE); without one, UTF-8 if the whole file decodes
as UTF-8, else Windows-1252 (what Excel on Windows writes for "CSV"), else Latin-1. Delimiter:
whichever of `,` `;` tab `|` splits the first lines into the most consistent number (> 1) of
fields, quotes respected. Every cell is the text as written; an empty cell is None.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from optout_desk.core.errors import BadInputError

from .limits import MAX_CSV_FIELD_CHARS, MAX_FILLED_CELLS, MAX_TEXT_BYTES

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_LINES = 50
_SAMPLE_CHARS = 4 * MAX_CSV_FIELD_CHARS


@dataclass
class TextTable:
    rows: list[list[str | None]]
    encoding: str
    delimiter: str


def read_text_table(path: Path) -> TextTable:
    """The table in a text file; BadInputError when it is larger than the desk reads, holds a
    field longer than MAX_CSV_FIELD_CHARS, or is not text."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise BadInputError(
            f"'{path.name}' is {size / 1024**2:,.0f} MB, more than the "
            f"{MAX_TEXT_BYTES // 1024**2} MB of text the desk reads in one file; split the list "
            "into smaller files."
        )
    prefer_tab = path.suffix.lower() == ".tsv"
    data = path.read_bytes()
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and b"\x00" not in data[:4096]:
        # Counted on the bytes, before decoding doubles the memory (the delimiter is an ASCII
        # byte in every single-byte encoding and in UTF-8).
        head = data[:_SAMPLE_CHARS].decode("latin-1")
        _check_cells(path.name, data.count(sniff_delimiter(head, prefer_tab=prefer_tab).encode())
                     + data.count(b"\n") + 1)
    text, encoding = decode(path.name, data)
    del data  # the text alone from here on: a large file is not held twice
    delimiter = sniff_delimiter(text, prefer_tab=prefer_tab)
    _check_cells(path.name, text.count(delimiter) + text.count("\n") + 1)
    # The field limit is the csv module's, for the whole process: this runs in the reader
    # process (files/_isolated.py), where nothing else parses CSV.
    csv.field_size_limit(MAX_CSV_FIELD_CHARS)
    reader = csv.reader(_lines(text), delimiter=delimiter, strict=False)
    rows: list[list[str | None]] = []
    line = 0  # the last line of the last record read
    try:
        for record in reader:
            rows.append([cell if cell != "" else None for cell in record])
            line = reader.line_num
    except csv.Error as exc:
        raise _unreadable(path.name, line + 1, exc) from None
    return TextTable(rows, encoding, delimiter)


def _check_cells(name: str, cells: int) -> None:
    if cells > MAX_FILLED_CELLS:
        raise BadInputError(
            f"'{name}' holds about {cells:,} cells, more than the {MAX_FILLED_CELLS:,} the "
            "desk reads in one file; split the list into smaller files."
        )


def _lines(text: str) -> Iterator[str]:
    """The text's lines with their ends, as a file opened with newline="" gives them, without
    io.StringIO's copy of the whole text (4 bytes a character)."""
    separator = "\n" if "\n" in text or "\r" not in text else "\r"  # old Mac files: CR only
    start = 0
    while (end := text.find(separator, start)) != -1:
        yield text[start:end + 1]
        start = end + 1
    if start < len(text):
        yield text[start:]


def _unreadable(name: str, line: int, exc: csv.Error) -> BadInputError:
    if "field larger than field limit" in str(exc):
        return BadInputError(
            f"'{name}' has a cell longer than {MAX_CSV_FIELD_CHARS:,} characters (in the row "
            f"from line {line:,}): most likely a quote (\") that is never closed, so the rest "
            "of the file reads as one cell; fix the quotes or export the list again."
        )
    return BadInputError(
        f"'{name}' could not be read as a text table (the row from line {line:,}): {exc}.")


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
    # The first lines only, from the start of the text: splitlines() on all of a large file
    # would build a string per line just to keep fifty.
    lines = text[:_SAMPLE_CHARS].lstrip("\ufeff").splitlines()[:_SAMPLE_LINES]
    sample = [line for line in lines if line.strip()]
    if not sample:
        return "\t" if prefer_tab else ","
    best, best_score = ("\t" if prefer_tab else ","), (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(record) for record in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:  # a field beyond the csv module's limit: not this delimiter's fault
            continue
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
