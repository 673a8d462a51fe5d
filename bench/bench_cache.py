"""The opt-out cache at scale: apply_fetch (one transaction, dedupe key) and load_columns.

Baselines measured in the same run on the same data: a bare `executemany` into a table without
keys (the least SQLite can do to store the rows); for loading, fetching row tuples and
transposing them with zip, and one record object per row (`load_records`).

    python -m bench.bench_cache            # 200k opt-outs
    python -m bench.bench_cache --full     # 1M opt-outs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from optout_desk.core.records import OptOutRecord
from optout_desk.store import cache, connections, db
from optout_desk.store.connections import ConnectionProfile


def generated(count: int) -> list[OptOutRecord]:
    return [
        OptOutRecord(
            date_opt_out=f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:"
            f"{n % 59:02d}.{n % 9_999_999:07d}Z",
            email=f"person{n}@example.com",
            phone=f"+3247{n:07d}" if n % 3 == 0 else "",
            first_name="Ann",
            last_name=f"Lee{n % 1000}",
            lang_code="nl",
            contact_id=n,
            survey_id=n % 50,
            source="bench",
        )
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="1M opt-outs instead of 200k")
    count = 1_000_000 if parser.parse_args().full else 200_000
    records = generated(count)
    with tempfile.TemporaryDirectory() as folder:
        conn = db.connect(Path(folder) / "bench.sqlite3")
        profile = connections.add(
            conn, ConnectionProfile(name="bench", system="checkmarket", base_url="https://x/")
        )
        assert profile.id is not None
        cid = profile.id

        start = time.perf_counter()
        result = cache.apply_fetch(conn, cid, "", records, replace=True, synced_at="t1")
        first = time.perf_counter() - start
        assert result.total == count

        start = time.perf_counter()
        cache.apply_fetch(conn, cid, "", records, replace=True, synced_at="t2")
        again = time.perf_counter() - start

        start = time.perf_counter()
        incremental = cache.apply_fetch(conn, cid, "", records[-1000:], replace=False,
                                        synced_at="t3")
        increment = time.perf_counter() - start
        assert incremental.added == 0

        conn.execute("CREATE TABLE bare (a, b, c, d, e, f, g, h, i, j, k, l)")
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO bare VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((cid, "", r.dedupe_key, *r.as_row()) for r in records),
        )
        conn.execute("COMMIT")
        bare = time.perf_counter() - start

        start = time.perf_counter()
        columns = cache.load_columns(conn, cid)
        load = time.perf_counter() - start
        assert len(columns["Email"]) == count

        start = time.perf_counter()
        by_rows = cache.load_columns_by_rows(conn, cid)
        transpose = time.perf_counter() - start
        assert by_rows == columns
        del by_rows

        start = time.perf_counter()
        loaded = cache.load_records(conn, cid)
        naive = time.perf_counter() - start
        assert len(loaded) == count
        conn.close()

    print(f"opt-outs: {count:,}")
    print(f"apply_fetch, first full sync:     {first:6.2f} s  "
          f"(baseline bare executemany, no key: {bare:6.2f} s; ratio {first / bare:.1f}x)")
    print(f"apply_fetch, full re-sync (swap): {again:6.2f} s")
    print(f"apply_fetch, 1000-row increment:  {increment:6.3f} s")
    print(f"load_columns (JSON arrays):       {load:6.2f} s  "
          f"(baselines: row tuples + zip {transpose:6.2f} s, {transpose / load:.1f}x; "
          f"load_records objects {naive:6.2f} s, {naive / load:.1f}x)")


if __name__ == "__main__":
    main()
