"""The corpus view ("1 · Corpus"): upload or the bundled sample, the text and gold columns, and
the load report; corpora are loaded once per session.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from inbedder_app.config import NO_COLUMN, SAMPLE_GOLD_COLUMN, SAMPLE_NAME, SAMPLE_PATH, UPLOAD_TYPES, AppConfig
from inbedder_app.resources import sample_bytes
from inbedder_app.state import GOLD_IN_VIEW, RESTORE_GOLD, short_key
from inbedder_app.text import column_hint, md_text
from inbedder_core import runs
from inbedder_core.corpus import (
    Corpus,
    describe_report,
    load_corpus,
)
from inbedder_core.errors import CorpusError
from inbedder_core.io.corpus import text_column_problem

# --------------------------------------------------------------------------- corpus


def _load(source_key: str, data: bytes, name: str, text_column: str | None,
          config: AppConfig, drop_duplicates: bool = False) -> tuple[Corpus, str]:
    """Load (or reuse from this session) a corpus and its content hash.

    Raises:
        CorpusError: the file, or this text column of it, cannot be loaded (remembered too,
            so a failed guess is not read again on every rerun).
    """
    memo: dict[tuple[str, str | None, bool], tuple[Corpus, str]] = st.session_state.setdefault("corpora", {})
    failed: dict[tuple[str, str | None, bool], tuple[str, list[str]]] = st.session_state.setdefault(
        "corpus_errors", {})  # (message, columns): no traceback kept
    key = (source_key, text_column, drop_duplicates)
    if key in failed:
        raise CorpusError(*failed[key])
    if key not in memo:
        try:
            corpus = load_corpus(data, name=name, text_column=text_column, max_bytes=config.max_bytes,
                                 max_rows=config.max_rows, drop_duplicates=drop_duplicates)
        except CorpusError as error:
            if len(failed) >= 6:
                failed.pop(next(iter(failed)))
            failed[key] = (str(error), error.columns)
            raise
        if len(memo) >= 3:
            memo.pop(next(iter(memo)))
        memo[key] = (corpus, runs.corpus_hash(corpus))
    return memo[key]


def _confirm_text_column(corpus: Corpus, columns: list[str], where: Any, source_key: str) -> None:
    """A text column that does not look like documents (``text_column_problem``) is used only once the
    analyst ticks the box saying so; until then a ``CorpusError`` names the columns seen.

    Raises:
        CorpusError: the column looks wrong and is not confirmed.
    """
    problem = text_column_problem(corpus)
    if not problem:
        return
    where.warning(md_text(f"{problem}. Choose the column holding the documents in the box above, or confirm."))
    if not where.checkbox(f"Use {corpus.text_column!r} as the text column anyway",
                          key=f"text_column_ok_{source_key}_{short_key(corpus.text_column)}"):
        raise CorpusError(f"{problem}; columns seen: {columns}. Choose the column holding the documents in the "
                          f"Text column box, or tick 'Use {corpus.text_column!r} as the text column anyway'.")


def render(config: AppConfig) -> tuple[Corpus, str, str | None, bool]:
    """Upload (or the sample), text and gold columns, load report. Returns (corpus, hash, gold, is_sample)."""
    st.subheader("1 · Corpus")
    uploaded = st.file_uploader(
        "Upload a corpus: CSV, TSV, TXT (one document per line), JSONL or Parquet. "
        "Without one, the bundled BANKING77 sample (online-banking queries) is used.",
        type=UPLOAD_TYPES, key="upload", max_upload_size=max(1, math.ceil(config.max_bytes / 2**20)),
    )
    if uploaded is None:
        data = sample_bytes(str(SAMPLE_PATH), config.sample_rows)
        name, source_key, is_sample = SAMPLE_NAME, short_key("sample", config.sample_rows), True
    else:
        data, name, is_sample = uploaded.getvalue(), uploaded.name, False
        source_key = short_key("upload", uploaded.file_id, uploaded.name, len(data))
    left, right = st.columns(2)
    picker = f"text_column_{source_key}"
    try:
        guessed, _ = _load(source_key, data, name, None, config)
    except CorpusError as error:  # perhaps only the guessed column is unusable: let the analyst choose one
        columns = error.columns
        if len(columns) < 2:
            raise CorpusError(column_hint(error, "upload a file whose text column holds the documents")) from error
        guessed_column = None
        text_column = left.selectbox("Text column", columns, index=None, key=picker,
                                     placeholder="Choose the column holding the texts")
        if text_column is None:  # the error (shown under the picker by main) says to choose
            raise CorpusError(column_hint(error)) from error
    else:
        columns = [str(c) for c in guessed.table.columns]
        guessed_column = guessed.text_column
        text_column = left.selectbox("Text column", columns, index=columns.index(guessed.text_column), key=picker)
    chosen_column = None if text_column == guessed_column else text_column
    try:
        corpus, digest = _load(source_key, data, name, chosen_column, config)
        dedupe_key = f"dedupe_{source_key}"
        if corpus.report.n_duplicates or st.session_state.get(dedupe_key):
            if left.checkbox("Skip duplicate texts", key=dedupe_key,
                             help="Keep only the first row of each exact repeat; the skipped rows are counted."):
                corpus, digest = _load(source_key, data, name, chosen_column, config, drop_duplicates=True)
    except CorpusError as error:
        raise CorpusError(column_hint(error)) from error
    _confirm_text_column(corpus, columns, left, source_key)
    others = [c for c in columns if c != text_column]
    gold_default = others.index(SAMPLE_GOLD_COLUMN) + 1 if is_sample and SAMPLE_GOLD_COLUMN in others else 0
    gold_key = f"gold_{source_key}"
    restored = st.session_state.pop(RESTORE_GOLD, "")  # a reopened run's gold column
    if restored != "" and (restored is None or restored in others):
        st.session_state[gold_key] = NO_COLUMN if restored is None else restored
    gold = right.selectbox("Gold label column (optional, for scores)", [NO_COLUMN, *others], index=gold_default,
                           key=gold_key)
    st.session_state[GOLD_IN_VIEW] = None if gold == NO_COLUMN else gold
    summary, *notes = describe_report(corpus.report)
    st.text(summary)
    if notes:
        with st.expander("Loading details"):
            st.text(column_hint("\n".join(notes)))
    return corpus, digest, (None if gold == NO_COLUMN else gold), is_sample
