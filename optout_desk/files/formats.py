"""The file types the desk reads, defined once for the reader, the CLI, the workflows and the GUI.

Kept free of heavy imports so the GUI can build its file dialogs and drop targets from it
without loading a spreadsheet library.
"""

from __future__ import annotations

# Workbooks, read with python-calamine (openpyxl as a fallback for xlsx). .xlsb is not here:
# the reader refuses it with a sentence saying to save it as .xlsx.
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")
# Delimited text whose columns are detected like a workbook's.
TABLE_TEXT_EXTENSIONS = (".csv", ".tsv")
# Plain text: read as a table by the import, and as one identifier per line by submit.
PLAIN_TEXT_EXTENSIONS = (".txt",)

# Files whose columns are detected (submit reads any other file as one identifier per line).
SPREADSHEET_EXTENSIONS = WORKBOOK_EXTENSIONS + TABLE_TEXT_EXTENSIONS
# Everything files.spreadsheet.read_table opens; any other name is refused before its bytes are
# read.
SUPPORTED_EXTENSIONS = SPREADSHEET_EXTENSIONS + PLAIN_TEXT_EXTENSIONS


def describe_extensions(extensions: tuple[str, ...] = SUPPORTED_EXTENSIONS) -> str:
    """".xlsx, .xlsm, .xls, .ods, .csv, .tsv or .txt" for a message."""
    return ", ".join(extensions[:-1]) + f" or {extensions[-1]}"


def dialog_filter(label: str = "Spreadsheets",
                  extensions: tuple[str, ...] = SUPPORTED_EXTENSIONS) -> str:
    """A Qt file dialog filter: "Spreadsheets (*.xlsx … *.txt);;All files (*)"."""
    patterns = " ".join(f"*{extension}" for extension in extensions)
    return f"{label} ({patterns});;All files (*)"
