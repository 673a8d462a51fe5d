"""Reconciliation at scale, and writing its result workbook.

1. Matching: a spreadsheet of N rows against an opt-out list of N records (half overlap, a few
   duplicates and invalid cells), one email column each side — core.reconcile.reconcile,
   whose result holds per row the bucket, the matching column (the identifier's `rule` text
   is the explanation) and the duplicate's earlier row; explanation sentences are formatted on
   demand (timed per row separately). Baselines in the same run on the same keys:
   pandas.merge(how="outer", indicator=True) and plain Python set algebra.
   A second line does email + phone on both sides against two pandas merges.
2. Export: the result workbook of 100k rows (Summary + one sheet per bucket, neutralised text,
   sized, frozen headers, explanations) vs xlsxwriter in constant-memory mode writing the very
   same cells with write_row (no neutralising, no styling, cells prepared beforehand).

    python -m bench.bench_reconcile          # 200k x 200k, export 20k
    python -m bench.bench_reconcile --full   # 1M x 1M, export 100k
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import xlsxwriter

from optout_desk.core.identifiers import Identifier, IdKind
from optout_desk.core.reconcile import (
    BUCKET_ORDER,
    Bucket,
    IdentifierColumn,
    explain_row,
    reconcile,
    suggest_near_matches,
)


def _email(original: str, key: str | None) -> Identifier:
    rule = "email, exact" if original == key else "email, case and spaces ignored"
    problem = None if key else "not a valid email address"
    return tuple.__new__(Identifier, (IdKind.EMAIL, original, key, problem, None, rule))


def _phone(key: str) -> Identifier:
    original = "0" + key[3:]
    return tuple.__new__(Identifier, (IdKind.PHONE, original, key, None, None,
                                      "phone, region BE"))


def generated(count: int) -> tuple[list[Identifier | None], list[Identifier | None],
                                   list[Identifier | None], list[Identifier | None]]:
    """Sheet rows 0..count-1 and list records count/2..3count/2: half overlap. 1% of sheet rows
    repeat an earlier one, 0.5% are invalid; case differs on every 3rd row."""
    rows: list[Identifier | None] = []
    for n in range(count):
        if n % 200 == 7:
            rows.append(_email("not an email", None))
            continue
        m = n - 50 if n % 100 == 99 else n
        key = f"person{m}@example{m % 97}.com"
        rows.append(_email(key.upper() if n % 3 == 0 else key, key))
    other: list[Identifier | None] = [
        _email(f"person{n}@example{n % 97}.com", f"person{n}@example{n % 97}.com")
        for n in range(count // 2, count + count // 2)
    ]
    row_phones: list[Identifier | None] = [
        _phone(f"+32470{n:07d}") if n % 2 else None for n in range(count)
    ]
    other_phones: list[Identifier | None] = [
        _phone(f"+32470{n:07d}") if n % 4 == 1 else None
        for n in range(count // 2, count + count // 2)
    ]
    return rows, other, row_phones, other_phones


def best_of(runs: int, work: object) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def bench_matching(count: int) -> None:
    import pandas as pd  # type: ignore[import-untyped]  # the baseline; no stubs installed

    rows, other, row_phones, other_phones = generated(count)
    row_keys = [i.key if i else None for i in rows]
    other_keys = [i.key if i else None for i in other]

    ours = best_of(3, lambda: reconcile([rows], [other]))
    result = reconcile([rows], [other])
    counts = result.counts()
    assert sum(counts[b] for b in BUCKET_ORDER if b is not Bucket.MISSING_FROM_CRM) == count

    sheet = pd.DataFrame({"key": row_keys})
    platform = pd.DataFrame({"key": other_keys})
    merge = best_of(2, lambda: sheet.merge(platform, on="key", how="outer", indicator=True))

    def with_sets() -> None:
        a, b = set(row_keys), set(other_keys)
        _ = (a - b, b - a, a & b)

    sets = best_of(3, with_sets)

    start = time.perf_counter()
    result.matched_record(result.rows_in(Bucket.IN_SYNC)[0])  # builds the record index once
    index_build = time.perf_counter() - start
    sample = range(0, count, max(1, count // 1000))
    start = time.perf_counter()
    for row in sample:
        explain_row(result, row, [rows], ["B (Email)"], [other])
    per_row = (time.perf_counter() - start) / len(sample)

    start = time.perf_counter()
    suggestions = suggest_near_matches(result, [rows], [other])
    suggest = time.perf_counter() - start

    print(f"reconcile {count:,} x {count:,} (1 email column each side):")
    print(f"  ours (buckets, matching column and rule per row): {ours:7.3f} s")
    print(f"  pandas merge (outer, indicator):                  {merge:7.3f} s   "
          f"ours is {merge / ours:4.1f}x faster")
    print(f"  Python sets (a-b, b-a, a&b; no rows, no reasons): {sets:7.3f} s   "
          f"ours / sets = {ours / sets:4.2f}")
    print(f"  explanation sentence, on demand:                  {per_row * 1e6:7.1f} us/row "
          f"(after a one-off {index_build:.3f} s record index for the matched record's text)")
    print(f"  near-match suggestions (separate step):           {suggest:7.3f} s "
          f"({len(suggestions)} found)")
    print("  counts: " + ", ".join(f"{b.value} {n:,}" for b, n in counts.items()))

    ours2 = best_of(3, lambda: reconcile([rows, row_phones], [other, other_phones]))
    row_phone_keys = [i.key if i else None for i in row_phones]
    other_phone_keys = [i.key if i else None for i in other_phones]
    sheet2 = pd.DataFrame({"email": row_keys, "phone": row_phone_keys})
    platform2 = pd.DataFrame({"email": other_keys, "phone": other_phone_keys})

    def two_merges() -> None:
        sheet2.merge(platform2[["email"]], on="email", how="outer", indicator=True)
        sheet2.dropna(subset=["phone"]).merge(platform2[["phone"]].dropna(), on="phone",
                                              how="outer", indicator=True)

    merge2 = best_of(2, two_merges)
    print(f"reconcile {count:,} x {count:,} (email + phone each side):")
    print(f"  ours: {ours2:7.3f} s   pandas (two merges): {merge2:7.3f} s   "
          f"ours is {merge2 / ours2:4.1f}x faster")


def bench_export(count: int) -> None:
    from optout_desk.files.mapping import ColumnMapping
    from optout_desk.files.spreadsheet import ImportedTable
    from optout_desk.workflows.reconcile import OtherList, ReconcileRun, write_result

    rows, other, row_phones, _ = generated(count)
    headers = ["Name", "Email", "Phone", "City", "Segment"]
    table_rows: list[list[Any]] = [
        [f"Person {n}", rows[n].original if rows[n] else None,  # type: ignore[union-attr]
         row_phones[n].original if row_phones[n] else None, "Gent", n % 7]  # type: ignore[union-attr]
        for n in range(count)
    ]
    table = ImportedTable(
        source=Path("bench.xlsx"), sha256="0" * 64, sheet="Sheet1", sheet_names=["Sheet1"],
        header_row_number=1, headers=headers, rows=table_rows,
        row_numbers=list(range(2, count + 2)),
    )
    other_list = OtherList(
        kind="file", name="list.xlsx", headers=["Email"],
        rows=[[i.original if i else None] for i in other], columns=[other], labels=["A (Email)"],
        row_numbers=list(range(2, count + 2)),
    )
    columns: list[IdentifierColumn] = [rows, row_phones]
    labels = ["B (Email)", "C (Phone)"]
    result = reconcile(columns, other_list.columns)
    run = ReconcileRun(table, ColumnMapping([1], [2], "BE"), columns, labels, other_list, result)

    with tempfile.TemporaryDirectory() as folder:
        ours_path = Path(folder) / "ours.xlsx"
        start = time.perf_counter()
        write_result(run, ours_path)
        ours = time.perf_counter() - start

        # The very same cells, prepared beforehand (not timed).
        sheets = [("Summary", ["Item", "Value"], [list(item) for item in run.summary()])]
        sheets += [(b.value, run.bucket_headers(b), list(run.bucket_rows(b))) for b in BUCKET_ORDER]
        cells = sum(len(r) for _, _, rs in sheets for r in rs)
        base_path = Path(folder) / "base.xlsx"
        start = time.perf_counter()
        workbook = xlsxwriter.Workbook(str(base_path), {"constant_memory": True})
        for name, sheet_headers, sheet_rows in sheets:
            sheet = workbook.add_worksheet(name[:31])
            sheet.write_row(0, 0, sheet_headers)
            for index, row in enumerate(sheet_rows, start=1):
                sheet.write_row(index, 0, row)
        workbook.close()
        base = time.perf_counter() - start

    print(f"export a {count:,}-row result workbook ({cells:,} cells, 6 sheets):")
    print(f"  ours (explanations, neutralised, styled, sized, atomic): {ours:7.3f} s")
    print(f"  xlsxwriter constant_memory write_row, same cells:        {base:7.3f} s   "
          f"ratio {ours / base:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="1M x 1M and a 100k-row export")
    full = parser.parse_args().full
    bench_matching(1_000_000 if full else 200_000)
    bench_export(100_000 if full else 20_000)


if __name__ == "__main__":
    main()
