"""Tests for ``inbedder_core.corpus``: real files in ``tmp_path``, no mocks."""

from __future__ import annotations

import io
import json
import string
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbedder_core.corpus import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    SKIP_DUPLICATE,
    SKIP_EMPTY,
    SKIP_MISSING,
    SKIP_WHITESPACE,
    SUPPORTED_FORMATS,
    Corpus,
    LoadReport,
    describe_report,
    load_corpus,
)
from inbedder_core.errors import CorpusError, InBedderError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_cap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caps come from the arguments unless a test sets the variables itself."""
    monkeypatch.delenv("INBEDDER_MAX_BYTES", raising=False)
    monkeypatch.delenv("INBEDDER_MAX_ROWS", raising=False)


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def assert_accounted(corpus: Corpus) -> None:
    """The invariant every load must satisfy: each row is kept or skipped for a reason."""
    report = corpus.report
    assert report.n_rows == report.n_kept + sum(report.skipped.values())
    assert report.n_kept == len(corpus) == len(corpus.ids) == len(corpus.table)
    assert list(corpus.table.index) == list(range(len(corpus)))
    assert corpus.table[corpus.text_column].tolist() == corpus.texts


# --- formats --------------------------------------------------------------------------------------


def test_csv_reads_every_column_and_keeps_order(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", 'id,text,label\na1,"Hello, world",greet\na2,"He said ""hi""",quote\n')
    corpus = load_corpus(path)
    assert corpus.texts == ["Hello, world", 'He said "hi"']
    assert corpus.ids == ["a1", "a2"]
    assert list(corpus.table.columns) == ["id", "text", "label"]
    assert corpus.table["label"].tolist() == ["greet", "quote"]
    assert corpus.source == "x.csv"
    assert corpus.report.format == "csv"
    assert_accounted(corpus)



def test_semicolon_separated_csv_is_read_as_a_table_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"  # a spreadsheet's CSV in a locale with decimal commas
    path.write_text("text;id;price\nmy card, it is lost;a7;3,50\n\"a refund; please\";b2;10\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.ids == ["a7", "b2"] and corpus.texts == ["my card, it is lost", "a refund; please"]
    assert any("read as semicolon-separated" in note and "3 fields" in note for note in corpus.report.notes)
    free = tmp_path / "free.csv"  # one column of text with semicolons in it stays one column
    free.write_text("note\nhello; there\nok; then; bye\n", encoding="utf-8")
    assert load_corpus(free).texts == ["hello; there", "ok; then; bye"]

def test_tsv_keeps_commas_inside_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "x.tsv", "text\tlabel\na, b, c\tone\nd\ttwo\n")
    corpus = load_corpus(path)
    assert corpus.texts == ["a, b, c", "d"]
    assert corpus.report.format == "tsv"


def test_txt_is_one_document_per_line_in_column_text(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "first line\r\nsecond, with comma\n  third  \n")
    corpus = load_corpus(path)
    assert corpus.texts == ["first line", "second, with comma", "  third  "]
    assert corpus.text_column == "text"
    assert corpus.ids == ["1", "2", "3"]
    assert corpus.report.text_column_guessed is False
    assert list(corpus.table.columns) == ["text"]


def test_txt_blank_lines_are_counted_not_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "a\n\n   \nb")
    corpus = load_corpus(path)
    assert corpus.texts == ["a", "b"]
    assert corpus.ids == ["1", "4"]
    assert corpus.report.skipped == {SKIP_EMPTY: 1, SKIP_WHITESPACE: 1}
    assert_accounted(corpus)


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json-lines"])
def test_jsonl_extensions(tmp_path: Path, suffix: str) -> None:
    lines = [{"id": 7, "text": "alpha", "score": 1.5, "ok": True, "tags": ["x", "y"]}, {"id": 8, "text": "beta"}]
    path = write(tmp_path, "x" + suffix, "\n".join(json.dumps(r) for r in lines) + "\n")
    corpus = load_corpus(path)
    assert corpus.report.format == "jsonl"
    assert corpus.texts == ["alpha", "beta"]
    assert corpus.ids == ["7", "8"]
    row = corpus.table.iloc[0]
    assert (row["score"], row["ok"], row["tags"]) == ("1.5", "true", '["x", "y"]')
    assert pd.isna(corpus.table.iloc[1]["score"])  # absent key = missing cell


def test_jsonl_with_crlf_line_endings(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.jsonl", '{"text": "a"}\r\n{"text": "b\\r\\n"}\r\n'))
    assert corpus.texts == ["a", "b\r\n"]


def test_jsonl_blank_lines_ignored_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '{"text": "a"}\n\n   \n{"text": "b"}\n')
    corpus = load_corpus(path)
    assert corpus.texts == ["a", "b"]
    assert corpus.report.n_rows == 2
    assert "ignored 2 blank lines" in corpus.report.notes


def test_parquet_values_become_strings_and_nulls_are_missing(tmp_path: Path) -> None:
    table = pa.table(
        {
            "text": ["one", None, "three", "four"],
            "n": pa.array([1, 2, None, 4], type=pa.int64()),
            "x": [0.5, float("nan"), 1.0, 2.0],
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    corpus = load_corpus(path)
    assert corpus.texts == ["one", "three", "four"]
    assert corpus.report.skipped == {SKIP_MISSING: 1}
    assert corpus.table["n"].tolist()[0] == "1"
    assert pd.isna(corpus.table["n"].tolist()[1])
    assert corpus.table["x"].tolist()[0] == "0.5"
    assert corpus.report.encoding is None
    assert_accounted(corpus)


def test_parquet_written_by_pandas_drops_stored_index(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"text": ["a", "b"]}, index=[10, 20]).to_parquet(path)
    corpus = load_corpus(path)
    assert list(corpus.table.columns) == ["text"]


def test_parquet_repeated_column_names_are_renamed(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["text", "text"]), path)
    corpus = load_corpus(path)
    assert list(corpus.table.columns) == ["text", "text.1"]
    assert corpus.texts == ["a"]


def test_format_overrides_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "export.dat", "text\nhello\n")
    assert load_corpus(path, format="csv").texts == ["hello"]
    assert load_corpus(path, format="TXT").texts == ["text", "hello"]


def test_unknown_extension_lists_formats(tmp_path: Path) -> None:
    path = write(tmp_path, "x.xlsx", "text\nhello\n")
    with pytest.raises(CorpusError) as err:
        load_corpus(path)
    message = str(err.value)
    assert "'.xlsx'" in message and "format=" in message
    assert all(fmt in message for fmt in SUPPORTED_FORMATS)


def test_unknown_format_argument(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown format 'xml'"):
        load_corpus(write(tmp_path, "x.csv", "text\na\n"), format="xml")


def test_bytes_input_uses_name_for_format_and_display() -> None:
    corpus = load_corpus(b"text\tlabel\nhi there\tx\n", name="upload.tsv")
    assert corpus.texts == ["hi there"]
    assert corpus.source == "upload.tsv"
    assert corpus.report.format == "tsv"


def test_bytes_input_with_format_only() -> None:
    assert load_corpus(b'{"text": "a"}\n', format="jsonl").texts == ["a"]


def test_bytes_without_name_or_format_is_an_error() -> None:
    with pytest.raises(CorpusError, match="pass name="):
        load_corpus(b"text\na\n")


def test_parquet_bytes_input(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["a", "b"]}).to_parquet(buffer)
    assert load_corpus(buffer.getvalue(), name="up.parquet").texts == ["a", "b"]


# --- encodings ------------------------------------------------------------------------------------

CSV_TEXT = "id,text\n1,café déjà vu\n2,naïve façade — “quoted”\n"


def test_utf8_plain(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", CSV_TEXT))
    assert corpus.report.encoding == "utf-8"
    assert "encoding: utf-8" in corpus.report.notes


def test_utf8_bom_is_stripped_from_first_column_name(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "\ufeff" + CSV_TEXT))
    assert list(corpus.table.columns) == ["id", "text"]
    assert corpus.ids == ["1", "2"]  # 'id' found, so the BOM is gone
    assert corpus.texts[0] == "café déjà vu"
    assert corpus.report.encoding == "utf-8-sig"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, codec: str) -> None:
    path = write(tmp_path, "x.csv", "\ufeff" + CSV_TEXT, encoding=codec)
    corpus = load_corpus(path)
    assert corpus.report.encoding == codec
    assert list(corpus.table.columns) == ["id", "text"]
    assert corpus.texts == ["café déjà vu", "naïve façade — “quoted”"]


def test_utf16_default_codec_writes_bom_and_is_read(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.txt", "a\nb\n", encoding="utf-16"))
    assert corpus.texts == ["a", "b"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_detected_from_nul_pattern(tmp_path: Path, codec: str) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", CSV_TEXT, encoding=codec))
    assert corpus.report.encoding == codec
    assert corpus.texts[1] == "naïve façade — “quoted”"
    assert any("NUL bytes" in note for note in corpus.report.notes)


def test_latin1_detected(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "id,text\n1,café crème\n2,Größe und Übermaß\n", encoding="latin-1")
    corpus = load_corpus(path)
    assert corpus.texts == ["café crème", "Größe und Übermaß"]
    assert corpus.report.encoding == "latin-1"
    assert any("not valid UTF-8" in note for note in corpus.report.notes)


def test_cp1252_detected_from_smart_quotes(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "“Smart” quotes – and café\n", encoding="cp1252")
    corpus = load_corpus(path)
    assert corpus.texts == ["“Smart” quotes – and café"]
    assert corpus.report.encoding == "cp1252"


def test_declared_encoding_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "Привет мир\n", encoding="cp1251")
    corpus = load_corpus(path, encoding="cp1251")
    assert corpus.texts == ["Привет мир"]
    assert corpus.report.encoding == "cp1251"


def test_cyrillic_single_byte_is_not_guessed_as_latin(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "Привет мир, как дела\n", encoding="cp1251")
    with pytest.raises(CorpusError, match="encoding=.*--encoding"):
        load_corpus(path)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Order 12345 from Москва shipped today, all fine and on time.\n", "cp1251"),
        ("Order 12345 from 北京市 shipped today, all fine and on time.\n", "gbk"),
    ],
)
def test_foreign_words_in_english_text_are_not_guessed_as_latin(tmp_path: Path, text: str, codec: str) -> None:
    """Few high bytes, but in runs as long as a word: not Western accents, so not guessed."""
    with pytest.raises(CorpusError, match="could not be detected with confidence"):
        load_corpus(write(tmp_path, "x.txt", text, encoding=codec))


def test_undecodable_bytes_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "中文文本，没有声明编码\n第二行\n", encoding="gbk")
    with pytest.raises(CorpusError) as err:
        load_corpus(path)
    message = str(err.value)
    assert "not valid UTF-8" in message and "could not be detected" in message
    assert "encoding=" in message and "--encoding" in message


def test_mostly_utf8_with_a_bad_byte_is_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "café\n".encode() + b"bad \xe9 byte\n")
    with pytest.raises(CorpusError, match=r"invalid byte 0xE9 .*line 2"):
        load_corpus(path)


def test_wrong_declared_encoding_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", b"caf\xe9\n")
    with pytest.raises(CorpusError, match="cannot be decoded as utf-8"):
        load_corpus(path, encoding="utf-8")


def test_unknown_declared_encoding(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown encoding 'klingon'"):
        load_corpus(write(tmp_path, "x.txt", "a\n"), encoding="klingon")


@pytest.mark.parametrize("encoding, message", [
    ("base64", "'base64' is not a text encoding"),  # bytes-to-bytes codecs raised LookupError
    ("rot13", "'rot13' is not a text encoding"),
    ("utf-8\x00", "unknown encoding"),  # a NUL in the name raised ValueError
    ("punycode", "cannot be decoded as punycode"),  # a codec's plain UnicodeError
])
def test_declared_encoding_that_cannot_decode_text_is_the_librarys_error(tmp_path: Path, encoding: str,
                                                                          message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        load_corpus(write(tmp_path, "x.txt", "hello\n"), encoding=encoding)


@pytest.mark.parametrize("encoding, data", [("utf-7", b"text\nhi +2AA- there\n"),
                                            ("unicode_escape", b"text\nhi \\ud800 there\n")])
def test_declared_encoding_giving_lone_surrogates_is_refused(tmp_path: Path, encoding: str, data: bytes) -> None:
    """Half a UTF-16 pair reached the tokenizer as a raw TypeError."""
    with pytest.raises(CorpusError, match=r"holds U\+D800 \(line 2\), half of a UTF-16 surrogate pair"):
        load_corpus(write(tmp_path, "x.csv", data), encoding=encoding)


# --- text stays text ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "tsv", "txt"])
def test_na_like_strings_stay_text(tmp_path: Path, fmt: str) -> None:
    words = ["NA", "null", "None", "nan", "NaN", "N/A", "#N/A", "-nan", "0", "True"]
    body = "\n".join(words) + "\n"
    path = write(tmp_path, f"x.{fmt}", body if fmt == "txt" else "text\n" + body)
    corpus = load_corpus(path)
    assert corpus.texts == words
    assert corpus.report.skipped == {}


def test_jsonl_null_is_missing_but_null_string_is_text(tmp_path: Path) -> None:
    rows = [{"text": None}, {"text": "null"}, {"text": "NA"}, {"other": 1}, {"text": float("nan")}]
    path = write(tmp_path, "x.jsonl", "\n".join(json.dumps(r) for r in rows))
    corpus = load_corpus(path, text_column="text")
    assert corpus.texts == ["null", "NA"]
    assert corpus.report.skipped == {SKIP_MISSING: 3}
    assert corpus.ids == ["2", "3"]


def test_leading_zeros_and_whitespace_are_verbatim(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "id,text\n007,  padded  \n010,x\n"))
    assert corpus.ids == ["007", "010"]
    assert corpus.texts == ["  padded  ", "x"]


# --- skipping and duplicates ----------------------------------------------------------------------


def test_skipped_counts_and_reasons(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", 'text,k\ngood,1\n,2\n"   ",3\n"\t\n",4\nalso good,5\n\n')
    corpus = load_corpus(path)
    assert corpus.texts == ["good", "also good"]
    # the blank last line is a row with empty cells, counted, not dropped
    assert corpus.report.skipped == {SKIP_EMPTY: 2, SKIP_WHITESPACE: 2}
    assert corpus.report.n_rows == 6
    assert corpus.ids == ["1", "5"]
    assert_accounted(corpus)


def test_duplicates_kept_by_default_and_noted(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "a\nb\na\na\nc\n")
    corpus = load_corpus(path)
    assert corpus.texts == ["a", "b", "a", "a", "c"]
    assert corpus.report.n_duplicates == 2
    assert corpus.report.skipped == {}
    assert any("2 duplicate texts kept" in note for note in corpus.report.notes)


def test_duplicates_dropped_on_request(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "a\nb\na\na\n\nc\n")
    corpus = load_corpus(path, drop_duplicates=True)
    assert corpus.texts == ["a", "b", "c"]
    assert corpus.ids == ["1", "2", "6"]
    assert corpus.report.n_duplicates == 0
    assert corpus.report.skipped == {SKIP_DUPLICATE: 2, SKIP_EMPTY: 1}
    assert_accounted(corpus)


def test_duplicates_are_exact_not_normalised(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.txt", "a\na \nA\n"))
    assert corpus.report.n_duplicates == 0


def test_table_holds_only_kept_rows_aligned(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "text,label\nkeep1,a\n,b\nkeep2,c\n")
    corpus = load_corpus(path)
    assert corpus.table.to_dict("list") == {"text": ["keep1", "keep2"], "label": ["a", "c"]}
    assert_accounted(corpus)


# --- columns --------------------------------------------------------------------------------------


def test_text_column_guessed_by_name_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "Review,stars,notes\ngreat,5,a much longer note than the review\n")
    corpus = load_corpus(path)
    assert corpus.text_column == "Review"
    assert corpus.report.text_column_guessed is True
    assert any("'Review' guessed" in note for note in corpus.report.notes)


def test_text_column_guessed_by_name_preference_order(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "comment,body\nc,b\n"))
    assert corpus.text_column == "body"


def test_text_column_guessed_by_longest_mean_length(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "x.csv",
        "code,phrase,amount\nA1,a rather long phrase here,1234567890123456789012345678901234567890\n"
        "B2,another one,-98765432109876543210.123456789\n",
    )
    corpus = load_corpus(path)
    assert corpus.text_column == "phrase"  # the longer numeric column is not text
    assert corpus.report.text_column_guessed is True
    assert any("longest mean length" in note for note in corpus.report.notes)


def test_guess_prefers_string_columns_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"blob": [[1, 2, 3, 4, 5, 6, 7, 8]], "title": ["short"]}), path)
    assert load_corpus(path).text_column == "title"


def test_text_column_given(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "text,summary\nlong text,short\n"), text_column="summary")
    assert corpus.texts == ["short"]
    assert corpus.report.text_column_guessed is False
    assert not any("guessed" in note for note in corpus.report.notes)


def test_missing_text_column_message(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as err:
        load_corpus(write(tmp_path, "x.csv", "id,text\n1,a\n"), text_column="body")
    assert str(err.value) == "column 'body' not found; available: ['id', 'text']; pass --text-column"


def test_id_column_not_unique_falls_back_to_row_numbers(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "id,text\n1,a\n1,b\n"))
    assert corpus.ids == ["1", "2"]
    assert any("not unique" in note for note in corpus.report.notes)


def test_id_column_uniqueness_is_over_kept_rows(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "id,text\nx,a\nx,\ny,b\n"))
    assert corpus.ids == ["x", "y"]


def test_id_column_given(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "x.csv", "key,text\nk1,a\nk2,b\n"), id_column="key")
    assert corpus.ids == ["k1", "k2"]


def test_id_column_given_missing(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"id column 'key' not found; available: \['id', 'text'\]"):
        load_corpus(write(tmp_path, "x.csv", "id,text\n1,a\n"), id_column="key")


def test_id_column_given_with_repeats_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="'k1' repeats"):
        load_corpus(write(tmp_path, "x.csv", "key,text\nk1,a\nk1,b\n"), id_column="key")


# --- errors ---------------------------------------------------------------------------------------


def test_errors_are_inbedder_errors() -> None:
    assert issubclass(CorpusError, InBedderError)


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="file not found"):
        load_corpus(tmp_path / "nope.csv")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="is not a file"):
        load_corpus(tmp_path)


@pytest.mark.parametrize("name", ["x.csv", "x.txt", "x.jsonl", "x.parquet"])
def test_zero_byte_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(CorpusError, match=r"is empty \(0 bytes\)"):
        load_corpus(write(tmp_path, name, b""))


@pytest.mark.parametrize("content", ["id,text\n", "id,text", "\ufeffid,text\r\n"])
def test_header_only(tmp_path: Path, content: str) -> None:
    with pytest.raises(CorpusError, match="has a header but no data rows"):
        load_corpus(write(tmp_path, "x.csv", content))


def test_bom_only(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="only a byte-order mark"):
        load_corpus(write(tmp_path, "x.csv", b"\xef\xbb\xbf"))


def test_binary_with_nul_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", b"text\nabc\x00\x01\x02\x03def\xff\xfe\x00\n")
    with pytest.raises(CorpusError, match="looks binary"):
        load_corpus(path)


@pytest.mark.parametrize(
    ("magic", "what"),
    [
        (b"\x89PNG\r\n\x1a\nrest", "PNG"),
        (b"PK\x03\x04rest", "ZIP"),
        (b"%PDF-1.7\nrest", "PDF"),
        (b"\x7fELF\x02\x01rest", "ELF"),
    ],
)
def test_binary_magic_bytes(tmp_path: Path, magic: bytes, what: str) -> None:
    with pytest.raises(CorpusError, match=f"looks binary.*{what}"):
        load_corpus(write(tmp_path, "x.csv", magic))


def test_parquet_named_csv_says_how_to_read_it(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    pd.DataFrame({"text": ["a"]}).to_parquet(path)
    with pytest.raises(CorpusError, match="format='parquet'"):
        load_corpus(path)
    assert load_corpus(path, format="parquet").texts == ["a"]


def test_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "a line of text\n" * 10)  # 150 bytes
    with pytest.raises(CorpusError) as err:
        load_corpus(path, max_bytes=100)
    message = str(err.value)
    assert "150 bytes" in message and "100 bytes" in message
    assert "max_bytes=" in message and "--max-bytes" in message and "INBEDDER_MAX_BYTES" in message
    assert len(load_corpus(path, max_bytes=150)) == 10


def test_size_cap_applies_to_bytes_input() -> None:
    with pytest.raises(CorpusError, match="over the size cap"):
        load_corpus(b"text\n" + b"x\n" * 100, name="u.csv", max_bytes=50)


def test_size_cap_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "x.txt", "a line of text\n" * 10)
    monkeypatch.setenv("INBEDDER_MAX_BYTES", "100")
    with pytest.raises(CorpusError, match="over the size cap"):
        load_corpus(path)
    assert len(load_corpus(path, max_bytes=1000)) == 10  # the argument wins


def test_bad_cap_environment_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBEDDER_MAX_ROWS", "lots")
    with pytest.raises(CorpusError, match="INBEDDER_MAX_ROWS='lots'"):
        load_corpus(write(tmp_path, "x.txt", "a\n"))


def test_defaults() -> None:
    assert DEFAULT_MAX_BYTES == 200 * 1024 * 1024
    assert DEFAULT_MAX_ROWS == 1_000_000


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.csv", "text\n" + "row\n" * 6),
        ("x.tsv", "text\n" + "row\n" * 6),
        ("x.txt", "row\n" * 6),
        ("x.jsonl", '{"text": "row"}\n' * 6),
    ],
)
def test_row_cap(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(CorpusError) as err:
        load_corpus(path, max_rows=5)
    message = str(err.value)
    assert "more than 5 rows" in message
    assert "max_rows=" in message and "--max-rows" in message and "INBEDDER_MAX_ROWS" in message
    assert len(load_corpus(path, max_rows=6)) == 6


def test_row_cap_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"text": [f"t{i}" for i in range(6)]}).to_parquet(path)
    with pytest.raises(CorpusError, match="more than 5 rows"):
        load_corpus(path, max_rows=5)


def test_row_cap_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBEDDER_MAX_ROWS", "2")
    with pytest.raises(CorpusError, match="more than 2 rows"):
        load_corpus(write(tmp_path, "x.txt", "a\nb\nc\n"))


@pytest.mark.parametrize("bad", [0, -1])
def test_cap_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(CorpusError, match="positive"):
        load_corpus(write(tmp_path, "x.txt", "a\n"), max_rows=bad)


def test_no_documents_left(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as err:
        load_corpus(write(tmp_path, "x.csv", 'text,label\n,a\n"  ",b\n'))
    message = str(err.value)
    assert "no documents left" in message
    assert "1 empty text" in message and "1 whitespace-only text" in message
    assert "--text-column" in message



def test_texts_of_only_invisible_characters_are_skipped_as_whitespace(tmp_path: Path) -> None:
    rows = ["a real text", "\u200b", "\ufeff\u200d \u2060", "\u200b visible \u200b", "\u00a0\u3000"]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows), encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.texts == ["a real text", "\u200b visible \u200b"] and corpus.ids == ["1", "4"]
    assert corpus.report.skipped == {"whitespace-only text": 3}
    with pytest.raises(CorpusError, match="holds no text to embed") as err:  # a TXT has no other column to choose
        load_corpus(write(tmp_path, "x.txt", "\n  \n\u200b\n"))
    assert "--text-column" not in str(err.value)

def test_malformed_csv_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "id,text\n1,fine\n2,not, quoted\n")
    with pytest.raises(CorpusError) as err:
        load_corpus(path)
    message = str(err.value)
    assert "not valid CSV" in message and "line 3" in message and "quote" in message


def test_extra_field_on_first_data_row_is_not_silently_an_index(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="line 2"):
        load_corpus(write(tmp_path, "x.csv", "id,text\n1,a,b\n2,c\n"))


def test_unclosed_quote(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="EOF inside string"):
        load_corpus(write(tmp_path, "x.csv", 'text\n"never closed\nmore\n'))


def test_malformed_jsonl_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": oops}\n')
    with pytest.raises(CorpusError, match="line 3 of 'x.jsonl' is not valid JSON"):
        load_corpus(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '{"text": "a"}\n["text", "b"]\n')
    with pytest.raises(CorpusError, match="line 2 of 'x.jsonl' is not a JSON object"):
        load_corpus(path)


def test_json_array_file_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '[\n{"text": "a"}\n]\n')
    with pytest.raises(CorpusError, match="one JSON array"):
        load_corpus(path)


def test_jsonl_only_blank_lines(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no JSON objects"):
        load_corpus(write(tmp_path, "x.jsonl", "\n \n"))


def test_corrupt_parquet_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"text": [f"document {i}" for i in range(100)]}).to_parquet(buffer)
    path = write(tmp_path, "x.parquet", buffer.getvalue()[:-40])
    with pytest.raises(CorpusError, match="not a valid Parquet file"):
        load_corpus(path)


def test_text_file_named_parquet(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not a valid Parquet file"):
        load_corpus(write(tmp_path, "x.parquet", "text\nhello\n"))


def test_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": pa.array([], type=pa.string())}), path)
    with pytest.raises(CorpusError, match="no rows"):
        load_corpus(path)


# --- report ---------------------------------------------------------------------------------------


def test_summary_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", 'text\na\na\n""\n"  "\nb\n')
    report = load_corpus(path).report
    assert report.summary() == (
        "Loaded 3 of 5 rows from 'x.csv' (column 'text', guessed); "
        "skipped 1 empty text, 1 whitespace-only text; 1 duplicate text kept."
    )
    lines = describe_report(report)
    assert lines[0] == report.summary()
    assert lines[1:] == report.notes


def test_summary_formats_thousands() -> None:
    report = LoadReport(n_rows=1000, n_kept=980, skipped={SKIP_EMPTY: 20}, source="x.csv", text_column="t")
    assert report.summary() == "Loaded 980 of 1,000 rows from 'x.csv' (column 't', given); skipped 20 empty text."


# --- round trips ----------------------------------------------------------------------------------

# Every character except NUL (read as a sign of a binary file) and surrogates, plus the
# characters that stress quoting. A lone "\r" is left out: pandas' writer leaves it
# unquoted, and a bare "\r" is a line break to every CSV reader.
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r")
_PIECES = st.one_of(st.text(_CHARS, max_size=8), st.sampled_from([",", '"', "\n", "\t", "\r\n", " ", "'", "NA"]))
_DOCUMENT = st.lists(_PIECES, min_size=1, max_size=8).map("".join).filter(lambda s: s.strip() != "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_DOCUMENT, min_size=1, max_size=6))
def test_csv_round_trip(tmp_path: Path, texts: list[str]) -> None:
    path = tmp_path / "round.csv"
    pd.DataFrame({"id": [f"d{i}" for i in range(len(texts))], "text": texts}).to_csv(path, index=False)
    corpus = load_corpus(path)
    assert corpus.texts == texts
    assert corpus.ids == [f"d{i}" for i in range(len(texts))]
    assert corpus.report.n_duplicates == len(texts) - len(set(texts))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_DOCUMENT, min_size=1, max_size=6), fmt=st.sampled_from(["tsv", "jsonl", "parquet"]))
def test_other_formats_round_trip(tmp_path: Path, texts: list[str], fmt: str) -> None:
    frame = pd.DataFrame({"text": texts})
    path = tmp_path / f"round.{fmt}"
    if fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path)
    assert load_corpus(path).texts == texts


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_bytes_load_or_raise_corpus_error(data: bytes) -> None:
    try:
        corpus = load_corpus(data, name="fuzz.csv")
    except CorpusError:
        return
    assert_accounted(corpus)


_LATIN_WORD = st.tuples(
    st.text(string.ascii_letters, min_size=1, max_size=6),
    st.sampled_from("éèüöñçàßåø"),
    st.text(string.ascii_letters, max_size=6),
).map("".join)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(_LATIN_WORD, st.text(string.ascii_letters, min_size=1)), min_size=1, max_size=8))
def test_latin1_words_detected_round_trip(words: list[str]) -> None:
    """Western text with accented letters inside words is detected, whatever the mix."""
    text = " ".join(words)
    expected_encoding = "latin-1" if any(c > "~" for c in text) else "utf-8"
    corpus = load_corpus((text + "\n").encode("latin-1"), name="u.txt")
    assert corpus.texts == [text]
    assert corpus.report.encoding == expected_encoding


# --- sample data ----------------------------------------------------------------------------------


def test_sample_banking77() -> None:
    corpus = load_corpus(REPO / "sample_data" / "banking77.csv")
    assert 2_900 <= len(corpus) <= 3_100
    assert corpus.text_column == "text"
    assert corpus.report.text_column_guessed is True
    assert corpus.table["intent"].nunique() == 77
    assert corpus.ids[0] == "b77-00001"
    assert corpus.report.skipped == {}
    assert corpus.report.encoding == "utf-8"


def test_tsv_with_stray_quotes_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "stray.tsv"
    path.write_text('text\tlabel\n"Great product\tx\nbye\ty\nlast" one\tz\nend\tw\n', encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.texts == ['"Great product', "bye", 'last" one', "end"]
    assert any("quote characters kept as text" in note for note in corpus.report.notes)


def test_csv_fields_spanning_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('text,label\n"two\nlines",a\nplain,b\r\n', encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.texts == ["two\nlines", "plain"]
    assert any("2 rows span 3 lines" in note for note in corpus.report.notes)


def test_jsonl_of_empty_objects_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("{}\n{}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="has no fields"):
        load_corpus(path)


def test_texts_with_nul_characters_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "nul.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "bad\\u0000byte"}\n{"text": "also fine"}\n', encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.texts == ["fine", "also fine"]
    assert corpus.report.skipped == {"text contains a NUL character (binary data?)": 1}
    assert_accounted(corpus)


# --- hostile inputs (hostile-audit) -------------------------------------------------------------


def test_jsonl_integer_too_long_to_read_names_the_line(tmp_path: Path) -> None:
    """An integer over Python's 4,300-digit limit raised a raw ValueError from json.loads."""
    path = write(tmp_path, "big.jsonl", '{"text": "fine"}\n{"text": "ok", "n": ' + "9" * 5000 + "}\n")
    with pytest.raises(CorpusError, match=r"line 2 of 'big.jsonl' holds a number of more than 4,300 digits"):
        load_corpus(path)


def test_jsonl_lone_surrogate_escape_is_refused(tmp_path: Path) -> None:
    """A "\\ud800" escape loaded as a text no tokenizer or UTF-8 writer accepts; a whole pair is one character."""
    path = write(tmp_path, "s.jsonl", '{"text": "pair \\ud83d\\ude00 ok"}\n{"text": "half \\ud800 here"}\n')
    with pytest.raises(CorpusError, match=r"line 2 of 's.jsonl' holds the escape \\ud800, half of a UTF-16"):
        load_corpus(path)
    paired = load_corpus(write(tmp_path, "p.jsonl", '{"text": "pair \\ud83d\\ude00 ok"}\n'))
    assert paired.texts == ["pair \U0001F600 ok"]
    with pytest.raises(CorpusError, match=r"holds the escape \\udc00"):  # in a key too
        load_corpus(write(tmp_path, "k.jsonl", '{"text": "a", "k\\uDC00": "x"}\n'))


def test_parquet_dates_outside_pythons_range_are_kept_as_text(tmp_path: Path) -> None:
    """A sentinel date (2**31 - 1 days) or a year past 9999 raised a raw OverflowError from to_pylist."""
    path = tmp_path / "dates.parquet"
    pq.write_table(pa.table({"text": ["card lost", "refund late"],
                             "day": pa.array([2**31 - 1, 0], pa.date32()),
                             "seen": pa.array([10**15, 1], pa.timestamp("s"))}), path)
    corpus = load_corpus(path)
    assert corpus.texts == ["card lost", "refund late"]
    assert corpus.table["day"].tolist() == ["<value out of range: 2147483647>", "1970-01-01"]
    assert corpus.table["seen"].iloc[0].startswith("<value out of range: ")
    assert sum("outside Python's range" in note for note in corpus.report.notes) == 2
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"text": ["a b"], "days": pa.array([[2**31 - 1]], pa.list_(pa.date32()))}), nested)
    with pytest.raises(CorpusError, match="column 'days' .* outside Python's range .* inside lists or structs"):
        load_corpus(nested)


def test_parquet_fixed_size_binary_text_column_gets_the_binary_note(tmp_path: Path) -> None:
    """Bad bytes were replaced without a word, unlike a plain binary column."""
    path = tmp_path / "fixed.parquet"
    pq.write_table(pa.table({"text": pa.array([b"\xff\xfe", b"ok"], pa.binary(2))}), path)
    corpus = load_corpus(path)
    assert corpus.texts == ["\ufffd\ufffd", "ok"]
    assert any("not a string column but fixed_size_binary[2]" in note and "bad bytes replaced" in note
               for note in corpus.report.notes)


@pytest.mark.parametrize("name", ["a" * 300 + ".csv", "x/" * 3000 + "a.csv"])
def test_a_path_the_system_refuses_is_the_librarys_error(tmp_path: Path, name: str) -> None:
    """A file name over 255 bytes (or a path over 4096) raised a raw OSError from Path.exists."""
    with pytest.raises(CorpusError, match="cannot open .*File name too long; check the path"):
        load_corpus(tmp_path / name)


def test_jsonl_lines_that_each_name_new_fields_are_refused_by_cells(tmp_path: Path) -> None:
    """Each line naming fields of its own made rows x fields cells: a 0.3 MB file took 0.5 GB. The cap is
    the Parquet one, 16 bytes a cell within 2 x max_bytes (1,250 cells at 10,000 bytes)."""
    sparse = "".join(json.dumps({"text": f"doc {i}", f"a{i}": 1, f"b{i}": 2}) + "\n" for i in range(40))
    with pytest.raises(CorpusError, match=r"has 81 different field names and at least 40 rows: a table of more "
                                          r"than 1,250 cells.*--max-bytes"):
        load_corpus(write(tmp_path, "sparse.jsonl", sparse), max_bytes=10_000)
    dense = "".join(json.dumps({"text": f"doc {i}", "a": i, "b": 2}) + "\n" for i in range(40))
    assert len(load_corpus(write(tmp_path, "dense.jsonl", dense), max_bytes=10_000)) == 40


def test_csv_with_more_cells_than_the_cap_allows_is_refused(tmp_path: Path) -> None:
    wide = "text" + ",c" * 199 + "\n" + "".join(f"doc {i}" + "," * 199 + "\n" for i in range(10))
    with pytest.raises(CorpusError, match=r"has 200 columns and at least 7 rows: a table of more than 1,250 cells"):
        load_corpus(write(tmp_path, "wide.csv", wide), max_bytes=10_000)
    narrow = "text,id\n" + "".join(f"doc {i},{i}\n" for i in range(500))
    assert len(load_corpus(write(tmp_path, "narrow.csv", narrow), max_bytes=10_000)) == 500


@pytest.mark.parametrize("name, sep", [("x.csv", ","), ("x.tsv", "\t")])
def test_a_header_of_more_than_max_columns_is_refused_before_parsing(tmp_path: Path, name: str, sep: str) -> None:
    """One line of 1M separators took 5 GB and 5 minutes in pandas' parser, before any cap."""
    from inbedder_core.io.readers import MAX_COLUMNS

    path = write(tmp_path, name, "text" + sep * MAX_COLUMNS + "\nhello\n")
    with pytest.raises(CorpusError, match=f"has {MAX_COLUMNS + 1:,} columns in its header, more than "
                                          f"{MAX_COLUMNS:,}; a corpus needs a text column"):
        load_corpus(path)
    assert len(load_corpus(write(tmp_path, name, "text" + sep * (MAX_COLUMNS - 1) + "\nhello\n"))) == 1


def test_jsonl_and_parquet_of_more_than_max_columns_are_refused(tmp_path: Path) -> None:
    """One JSONL line of 200,000 fields (2.7 MB) took 0.7 GB and 27 s as a one-row frame."""
    from inbedder_core.io.readers import MAX_COLUMNS

    line = json.dumps({"text": "hello", **{f"k{j}": 1 for j in range(MAX_COLUMNS)}})
    with pytest.raises(CorpusError, match=f"more than {MAX_COLUMNS:,} field names by line 2; a corpus needs"):
        load_corpus(write(tmp_path, "wide.jsonl", '{"text": "first"}\n' + line + "\n"))
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"text": ["hello"]} | {f"k{j}": [1] for j in range(MAX_COLUMNS)}), path)
    with pytest.raises(CorpusError, match=f"more than {MAX_COLUMNS:,} columns \\({MAX_COLUMNS + 1:,}\\)"):
        load_corpus(path)


def test_jsonl_with_carriage_return_line_endings_says_so(tmp_path: Path) -> None:
    """Lines ending in a lone \\r (old Mac) read as one line with 'Extra data' and no word of why."""
    path = write(tmp_path, "mac.jsonl", '{"text": "a"}\r{"text": "b"}\r')
    with pytest.raises(CorpusError, match=r"Extra data at column 15 \(its lines end in a carriage return alone, "
                                          r"\\r: re-save it with \\n line endings\)"):
        load_corpus(path)
    assert load_corpus(write(tmp_path, "pc.jsonl", '{"text": "a"}\r\n{"text": "b"}\r\n')).texts == ["a", "b"]


def test_bomless_utf16_of_non_latin_text_is_told_how_to_read(tmp_path: Path) -> None:
    """Few NUL bytes (only at spaces and line breaks): the error said 'is not UTF-16' and named no fix."""
    text = "Привет мир\nкарта потеряна\n"
    path = write(tmp_path, "ru.txt", text.encode("utf-16-le"))
    with pytest.raises(CorpusError, match="if it is UTF-16 text without a byte-order mark .* pass "
                                          "encoding='utf-16-le' or 'utf-16-be' \\(CLI: --encoding\\)"):
        load_corpus(path)
    assert load_corpus(path, encoding="utf-16-le").texts == ["Привет мир", "карта потеряна"]


def test_tsv_read_again_without_quotes_is_held_to_max_columns(tmp_path: Path) -> None:
    """A quote in the header hid its tabs from the first count; the literal re-read had no column cap."""
    from inbedder_core.io.readers import MAX_COLUMNS

    tabs = "\t" * MAX_COLUMNS
    path = write(tmp_path, "x.tsv", f'"text{tabs}\n{tabs}row"\n')  # one quoted field to Python's csv
    with pytest.raises(CorpusError, match=f"has {MAX_COLUMNS + 1:,} columns in its header, more than"):
        load_corpus(path)
