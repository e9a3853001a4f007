"""Fuzz the corpus readers for longer than the test suite does: any bytes, for each format, must
give a ``Corpus`` or a ``CorpusError``, never another exception (and never a crash of the process).

Hypothesis drives it (atheris does not install on this Python); each format gets ``--examples``
inputs (default 20,000) from the same strategies as ``tests/test_fuzz.py`` plus mutations of valid
files. A failure prints the smallest input found; add it to ``tests/test_fuzz.py`` as an
``@example`` (that is how the deeply nested JSONL of issue 20 became a regression test)::

    PYTHONPATH=$PWD python benchmarks/fuzz_readers.py --examples 20000 [--formats csv jsonl]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pandas as pd  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_fuzz import ROW_BYTES, TEXTY, _parquet, read  # noqa: E402

from inbedder_core.io.load import SUPPORTED_FORMATS  # noqa: E402


def _damage(data: bytes, flips: list[int], cut: int) -> bytes:
    out = bytearray(data)
    for at in flips:
        out[at % len(out)] ^= 0xFF
    return bytes(out[: max(8, cut % (len(out) + 1))])


DAMAGED_PARQUET = st.builds(
    _damage,
    st.lists(st.tuples(st.one_of(st.none(), TEXTY), st.integers(-5, 5)), min_size=1, max_size=20).map(
        lambda rows: _parquet(pd.DataFrame(rows, columns=["text", "n"]))),
    st.lists(st.integers(0, 10_000), max_size=3), st.integers(0, 10_000))
"""Valid small Parquet files with a few bytes flipped and the tail cut."""


def _property(fmt: str, inputs: st.SearchStrategy[bytes], examples: int):
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=inputs)
    def prop(data: bytes) -> None:
        read(data, fmt)

    return prop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--formats", nargs="*", default=list(SUPPORTED_FORMATS))
    options = parser.parse_args()
    failed = 0
    for fmt in options.formats:
        inputs = ROW_BYTES if fmt != "parquet" else st.one_of(
            st.binary(max_size=2000), st.binary(max_size=2000).map(lambda b: b"PAR1" + b), DAMAGED_PARQUET)

        prop = _property(fmt, inputs, options.examples)
        start = time.perf_counter()
        try:
            prop()
            outcome = "no failure"
        except Exception as error:  # noqa: BLE001 - the finding is what we print
            failed += 1
            outcome = f"FAILED: {type(error).__name__}: {error}"
        print(f"{fmt:8s} {options.examples:,} examples in {time.perf_counter() - start:.0f} s: {outcome}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
