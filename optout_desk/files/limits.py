"""How big a file the desk reads, and why: each limit is far above any operator's real list and
far below what would exhaust the machine. Files beyond a limit are refused with one sentence
before the reader allocates anything in proportion to them.

The desk's target is a 1,000,000-row list (bench/bench_import.py: 7 columns, a 43 MB xlsx of
376 MB of sheet XML, about 0.9 GB in memory once read). The limits leave 2-3 times that.
"""

from __future__ import annotations

# -- the dense table a reader builds -----------------------------------------------------------
# A workbook reader allocates rows x columns cells for the range from A1 to the last cell,
# however empty it is (python-calamine: 32 bytes a cell, plus 8 for Python's row lists). One
# cell at XFD1048576 means 17 billion cells (512 GiB): the process aborted. 20 million cells
# is 1,000,000 rows x 20 columns, about 0.8 GB even when empty; the benchmark list is 7
# million.
MAX_SHEET_CELLS = 20_000_000
# Cells that hold something (counted in the file, before reading): the same bound, because each
# costs more than an empty one.
MAX_FILLED_CELLS = MAX_SHEET_CELLS

# -- workbook containers (checked on the zip directory, before anything is decompressed) -------
# The benchmark's 1M-row workbook unpacks to 376 MB; twice the cell limit's worth of XML is
# below 1.5 GB. A part that unpacks to more cannot hold a list within the cell limit.
MAX_UNCOMPRESSED_BYTES = 1536 * 1024**2
# Real workbooks compress 5-15:1 (the benchmark: 8:1); a sheet of a million styled empty rows
# ~100:1. Above 1000:1 a file is built to explode (a "zip bomb").
MAX_RATIO = 1000
RATIO_CHECK_ABOVE_BYTES = 50 * 1024**2
# A workbook is a few dozen parts; a zip directory of millions of entries is an attack on the
# directory reader itself.
MAX_ZIP_MEMBERS = 10_000
# No text run in sheet XML (a cell's text between two tags) is longer than this: Excel's own
# limit is 32,767 characters a cell, at most 163,835 bytes as XML ("&amp;" for "&").
MAX_XML_TEXT_RUN_BYTES = 1024 * 1024
# Sheet XML is 25-60 bytes a cell (the benchmark: 54), a few hundred with formulas or
# OpenDocument styles. A part of more than 64 MB with over 2 KB of XML a cell is filler built to
# keep a reader busy, not a list.
MAX_XML_BYTES_PER_CELL = 2048
XML_DENSITY_CHECK_ABOVE_BYTES = 64 * 1024**2

# -- delimited text ---------------------------------------------------------------------------
# A CSV is read whole (its encoding is decided on all of it) and every cell becomes a Python
# string (~60 bytes each). The 1M-row benchmark list is ~100 MB as CSV; 512 MB leaves room for
# wide exports. The cell limit above applies too (counted before parsing).
MAX_TEXT_BYTES = 512 * 1024**2
# Python's csv module refuses fields over 131,072 characters by default. A notes column can be
# longer than Excel's 32,767; a field of a million characters is a quote never closed (the rest
# of the file read as one cell), not an identifier.
MAX_CSV_FIELD_CHARS = 1024 * 1024

# -- the reader process -----------------------------------------------------------------------
# Files are parsed in a child process (files/_isolated.py); these bound it. Reading the 1M-row
# benchmark list peaks at ~0.9 GB resident in the child; 2.5 GiB of address space leaves room
# for the largest list within the limits above, and ends any runaway the checks did not foresee
# long before it can exhaust the machine.
MAX_READER_MEMORY_BYTES = 2560 * 1024**2
# The 1M-row list takes ~15 s on a slow 2-core machine; a read still running after 10 minutes
# is stuck (or fed by a file built to be slow).
MAX_READER_SECONDS = 600.0
