"""Plain identifier lists (one email or phone per line) as submit reads them from a file.

The file is read whole, so its size is bounded first: every line becomes an identifier with its
source, a few hundred bytes each in memory.
"""

from __future__ import annotations

from pathlib import Path

from optout_desk.core.errors import BadInputError

from ._sniff import check_file

# 64 MiB is about 2.5 million identifiers (25 bytes a line), 2.5 times the desk's 1M-row
# target, and about 1 GB once each line is an identifier with its source; a list longer than
# that is not typed or pasted by a person: it is an export, read as a spreadsheet.
MAX_LIST_BYTES = 64 * 1024**2


def read_list_file(path: Path) -> bytes:
    """The bytes of a text list; BadInputError for a folder, a missing, unreadable or too large
    file."""
    size = check_file(path)
    if size > MAX_LIST_BYTES:
        raise BadInputError(
            f"'{path.name}' is {size / 1024**2:,.0f} MB, more than the {MAX_LIST_BYTES // 1024**2}"
            " MB a list of one identifier per line may hold; save it as .csv (one column of "
            "emails or phones) so it is read as a spreadsheet."
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"'{path}' could not be read: {exc.strerror or exc}.") from None
