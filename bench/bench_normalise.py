"""Normalising phone strings of mixed formats: the desk's normaliser against phonenumbers alone.

Target (issue 2): 1M strings in ≤ 5 s, measured both as imports do it (a whole column through
PhoneNormaliser.many) and one value at a time. Baseline measured in the same run:
phonenumbers.parse + is_valid_number + format_number on a sample, scaled to the same count.

    python -m bench.bench_normalise            # 200k strings
    python -m bench.bench_normalise --full     # 1M strings
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Any

import phonenumbers

from optout_desk.core.identifiers import PhoneNormaliser


def mixed_phones(count: int, seed: int = 1) -> list[object]:
    """Mostly distinct Belgian, Dutch and US numbers written the ways spreadsheets hold them."""
    rng = random.Random(seed)
    values: list[object] = []
    for _ in range(count):
        subscriber = rng.randrange(10_000_000)
        shape = rng.random()
        be = f"47{subscriber // 10:06d}"[:8]
        if shape < 0.30:
            values.append(f"+324{be}")                                   # clean E.164
        elif shape < 0.50:
            values.append(f"+32 4{be[:2]} {be[2:4]} {be[4:6]} {be[6:]}")  # international, spaced
        elif shape < 0.70:
            values.append(f"04{be[:2]} {be[2:4]} {be[4:6]} {be[6:]}")     # national
        elif shape < 0.80:
            values.append(f"+1-202-55{subscriber % 10}-{subscriber % 10000:04d}")
        elif shape < 0.86:
            values.append(f"+31 6 {subscriber % 100_000_000:08d}")      # Dutch mobile
        elif shape < 0.88:
            values.append(f"06-{subscriber % 100_000_000:08d}")  # foreign national: slow
        elif shape < 0.95:
            values.append(float(f"324{be}"))                           # Excel number cell
        else:
            values.append(f"0032 4{be}")                                 # 00 international prefix
    return values


def desk(values: list[object]) -> tuple[float, int]:
    """One value at a time (the cached __call__), as single cells are normalised."""
    normaliser: Any = PhoneNormaliser("BE")  # given cells of any type, as imports do
    start = time.perf_counter()
    valid = sum(1 for value in values if normaliser(value).key is not None)
    return time.perf_counter() - start, valid


def desk_column(values: list[object]) -> tuple[float, int]:
    """A whole column at once (PhoneNormaliser.many), as imports normalise."""
    gc.disable()  # as files.mapping.normalise_columns does: no garbage, millions of tuples
    try:
        start = time.perf_counter()
        results = PhoneNormaliser("BE").many(values)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
    return seconds, sum(1 for ident in results if ident is not None and ident.key is not None)


def phonenumbers_alone(values: list[object]) -> float:
    start = time.perf_counter()
    for value in values:
        text = str(value)
        try:
            number = phonenumbers.parse(text, "BE")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1M strings (default 200k)")
    count = 1_000_000 if parser.parse_args().full else 200_000
    values = mixed_phones(count)
    distinct = len({str(v) for v in values})
    column_seconds, column_valid = desk_column(values)
    seconds, valid = desk(values)
    assert valid == column_valid
    sample = values[: max(count // 20, 10_000)]
    baseline = phonenumbers_alone(sample) * (count / len(sample))
    print(f"phones: {count:,} mixed-format values ({distinct:,} distinct), {valid:,} valid")
    target = 5 * count / 1_000_000
    print(f"  desk, a column at once  {column_seconds:7.2f} s   "
          f"{column_seconds / count * 1e6:6.2f} µs/value   target ≤ {target:.1f} s")
    print(f"  desk, one value a time  {seconds:7.2f} s   {seconds / count * 1e6:6.2f} µs/value")
    print(f"  phonenumbers alone      {baseline:7.2f} s   (measured on {len(sample):,}, scaled)")
    print(f"  speed-up                {baseline / column_seconds:7.1f}× (a column), "
          f"{baseline / seconds:.1f}× (one at a time)")


if __name__ == "__main__":
    main()
