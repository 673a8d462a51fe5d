"""Importing a large xlsx: our read_table + detect_columns + normalise_columns against
python-calamine's raw read of the same file (load the sheet + to_python), measured in the same run.

Target (import issue): import AND normalise every email/phone cell in ≤ 1.5× calamine's raw read;
peak memory of the import with a 1M-record opt-out list held beside it ≤ 1.5 GB. The import
includes what makes an untrusted file safe to read (issue 9): the extent check of the sheet XML
and parsing in a reader process whose rows come back in pickled blocks; that process's own peak
is printed beside the app's. Each side runs in
its own subprocess so its time and peak RSS (ru_maxrss) are its own; the import is timed alone
and again with the opt-out list held (the memory figure's run).

    python -m bench.bench_import            # 100k rows
    python -m bench.bench_import --full     # 1M rows
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5
TARGET_PEAK_MB = 1.5 * 1024


def write_workbook(path: Path, rows: int, seed: int = 1) -> None:
    """A CRM export: id, names, email, a mobile (3/4 text in several shapes, 1/4 number cells as
    Excel stores them), language, a date serial."""
    import xlsxwriter

    rng = random.Random(seed)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["Contact ID", "First name", "Last name", "E-mail", "Mobile",
                           "Language", "Signed up"])
    for i in range(1, rows + 1):
        subscriber = rng.randrange(1_000_000)
        sheet.write_number(i, 0, i)
        sheet.write_string(i, 1, f"First{i % 997}")
        sheet.write_string(i, 2, f"Last{i % 1009}")
        sheet.write_string(i, 3, f"User{i}@Example{i % 50}.com")
        shape = i % 4
        if shape == 0:
            sheet.write_number(i, 4, float(f"32470{subscriber:06d}"))
        elif shape == 1:
            sheet.write_string(i, 4, f"+32470{subscriber:06d}")
        elif shape == 2:
            sheet.write_string(i, 4, f"+32 470 {subscriber:06d}")
        else:
            sheet.write_string(i, 4, f"0470 {subscriber // 1000:03d} {subscriber % 1000:03d}")
        sheet.write_string(i, 5, "nl" if i % 3 else "fr")
        sheet.write_number(i, 6, 45000 + i % 1000)
    workbook.close()


def _child_raw(path: str) -> dict[str, float]:
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    workbook = CalamineWorkbook.from_path(path)
    rows = workbook.get_sheet_by_index(0).to_python()
    return {"seconds": time.perf_counter() - started, "rows": len(rows) - 1}


def _child_ours(path: str, optouts: int) -> dict[str, float]:
    from optout_desk.core.records import OptOutRecord
    from optout_desk.files.mapping import detect_columns, normalise_columns
    from optout_desk.files.spreadsheet import read_table

    # The opt-out list a reconcile holds beside the import (memory figure only; not timed).
    held = [
        OptOutRecord(date_opt_out=f"2024-01-01T00:00:00.{n:07d}Z", email=f"person{n}@example.com",
                     phone=f"+3247{n:07d}" if n % 3 == 0 else "", contact_id=n)
        for n in range(optouts)
    ]
    started = time.perf_counter()
    table = read_table(Path(path))
    read_done = time.perf_counter()
    mapping = detect_columns(table, "BE")
    columns = normalise_columns(table, mapping)
    finished = time.perf_counter()
    valid = sum(1 for column in columns for ident in column.identifiers if ident and ident.key)
    return {
        "seconds": finished - started, "read": read_done - started,
        "normalise": finished - read_done, "rows": len(table.rows), "valid": valid,
        "emails": len(mapping.email_columns), "phones": len(mapping.phone_columns),
        "held": len(held),
    }


def _run_child(*args: str) -> dict[str, float]:
    code = (
        "import json, resource, sys; from bench import bench_import as b; "
        f"r = b.{args[0]}(*sys.argv[1:]) if len(sys.argv) < 3 else "
        f"b.{args[0]}(sys.argv[1], int(sys.argv[2])); "
        "r['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        # The import parses in a reader process (files/_isolated.py): its own peak.
        "r['reader_peak_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "print(json.dumps(r))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, *args[1:]], check=True, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1M rows and a 1M opt-out list")
    parser.add_argument("--rows", type=int, help="override the row count")
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.full else 100_000)
    optouts = 1_000_000 if args.full else rows
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contacts.xlsx"
        started = time.perf_counter()
        write_workbook(path, rows)
        size_mb = path.stat().st_size / 1024**2
        print(f"workbook: {rows:,} rows, {size_mb:.1f} MB (written in "
              f"{time.perf_counter() - started:.1f} s)")
        raw = _run_child("_child_raw", str(path))
        # The time target is the import alone; the memory target adds an opt-out list held
        # beside it (which also slows the import: a bigger heap). Both are printed.
        ours = _run_child("_child_ours", str(path), "0")
        held = _run_child("_child_ours", str(path), str(optouts))
        raw_again = _run_child("_child_raw", str(path))
    baseline = min(raw["seconds"], raw_again["seconds"])
    ratio = ours["seconds"] / baseline
    print(f"calamine raw read (load + to_python): {raw['seconds']:.2f} s and "
          f"{raw_again['seconds']:.2f} s (baseline: the faster), peak {raw['peak_mb']:.0f} MB")
    print(f"ours: read_table {ours['read']:.2f} s + detect/normalise {ours['normalise']:.2f} s "
          f"= {ours['seconds']:.2f} s for {int(ours['rows']):,} rows, "
          f"{int(ours['valid']):,} valid identifiers")
    verdict = "OK" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio ours/raw: {ratio:.2f}x (target <= {TARGET_RATIO}x) {verdict}")
    print(f"with {int(held['held']):,} opt-outs held beside it: read_table {held['read']:.2f} s + "
          f"detect/normalise {held['normalise']:.2f} s = {held['seconds']:.2f} s, "
          f"{held['seconds'] / baseline:.2f}x raw")
    peak_verdict = "OK" if held["peak_mb"] <= TARGET_PEAK_MB else "OVER"
    print(f"peak memory, import + {int(held['held']):,} opt-outs held: {held['peak_mb']:.0f} MB "
          f"(target <= {TARGET_PEAK_MB:.0f} MB) {peak_verdict}")
    print(f"the reader process (parses the file, then ends): peak {held['reader_peak_mb']:.0f} MB;"
          f" the two at once at most {held['peak_mb'] + held['reader_peak_mb']:.0f} MB (each "
          "peak is its own; the app's comes after the reader's, while it holds the table)")


if __name__ == "__main__":
    main()
