"""Property tests (hypothesis), bounded for CI: any bytes given to a corpus reader give a ``Corpus``
or a ``CorpusError``, never anything else; the prompt template keeps any text and instruction
verbatim; any table of text round-trips exactly through ``write_csv`` and ``read_csv_export``.
``benchmarks/fuzz_readers.py`` runs the same reader property far longer; what it finds is added
below as an explicit example.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inbedder_core.errors import CorpusError
from inbedder_core.export import read_csv_export, write_csv
from inbedder_core.io.corpus import Corpus
from inbedder_core.io.load import SUPPORTED_FORMATS, load_corpus
from inbedder_core.prompts import INBEDDER_PATTERN, fill_pattern, split_pattern

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read(data: bytes, fmt: str) -> Corpus | CorpusError:
    """The reader's outcome: a Corpus, or its CorpusError; anything else propagates and fails the test."""
    try:
        corpus = load_corpus(data, name=f"fuzz.{fmt}", max_bytes=1 << 20, max_rows=10_000)
    except CorpusError as error:
        return error
    assert len(corpus.texts) == len(corpus.ids) == len(corpus.table) > 0
    assert all(isinstance(t, str) and t.strip() for t in corpus.texts)
    return corpus


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


TEXTY = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
ROW_BYTES = st.lists(st.one_of(
    st.binary(max_size=30),
    TEXTY.map(lambda t: t.encode("utf-8")),
    st.sampled_from([b",", b"\t", b'"', b"\n", b"\r\n", b"{", b"}", b"[", b"]", b":", b"\x00", b"\xef\xbb\xbf",
                     b"\xff\xfe", b'{"text": "', b'"}', b"null", b"PAR1"]),
), max_size=25).map(b"".join)


@pytest.mark.parametrize("fmt", [f for f in SUPPORTED_FORMATS if f != "parquet"])
@FAST
@given(data=ROW_BYTES)
@example(data=b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}\n")  # found: RecursionError (issue 20)
@example(data=b"text\n" + b"\xff" * 3)
def test_text_readers_return_a_corpus_or_the_librarys_error(fmt, data):
    read(data, fmt)


@FAST
@given(data=st.binary(max_size=400))
def test_parquet_reader_on_any_bytes(data):
    read(data, "parquet")
    read(b"PAR1" + data + b"PAR1", "parquet")


@FAST
@given(frame=st.lists(st.tuples(st.one_of(st.none(), TEXTY), st.integers(-5, 5)), min_size=1, max_size=8),
       cut=st.integers(0, 2000), flip=st.integers(0, 2000))
@example(frame=[("", 0), ("0", 0)], cut=0, flip=28)  # found: UnicodeDecodeError from a flipped string byte
def test_parquet_reader_on_damaged_parquet(frame, cut, flip):
    data = bytearray(_parquet(pd.DataFrame(frame, columns=["text", "n"])))
    read(bytes(data), "parquet")
    if len(data) > 8:
        data[flip % len(data)] ^= 0xFF
        read(bytes(data), "parquet")
        read(bytes(data[: cut % len(data)]), "parquet")


@FAST
@given(text=st.text(), instruction=st.text())
def test_the_prompt_keeps_any_text_and_instruction_verbatim(text, instruction):
    parts = split_pattern(INBEDDER_PATTERN, text, instruction)
    head, tail = INBEDDER_PATTERN.split("{input}")
    assert (parts.before, parts.text) == (head, text)
    assert parts.after == tail.replace("{instruction}", instruction)
    assert fill_pattern(INBEDDER_PATTERN, text, instruction) == parts.prompt


CELL = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=30)


@FAST
@given(rows=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=6), names=st.tuples(CELL, CELL),
       excel=st.booleans())
def test_any_text_round_trips_through_the_csv_export(tmp_path_factory, rows, names, excel):
    frame = pd.DataFrame(rows, columns=list(names), dtype=object)
    path = tmp_path_factory.mktemp("csv") / "out.csv"
    write_csv(frame, path, excel=excel)
    back = read_csv_export(path)
    assert list(back.columns) == list(names)
    assert [list(r) for r in back.itertuples(index=False)] == [list(r) for r in rows]
