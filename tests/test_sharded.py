"""Sharded embedding in this process (``inbedder_core.sharded``): shards in the long layout, each input row
exactly once, resume after SIGINT, the cache, and clear errors. The Ray path is in ``test_sharded_ray.py``."""

from __future__ import annotations

import json
import signal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from inbedder_core.embedding_io import read_embeddings, read_for_corpus
from inbedder_core.encoder import load_encoder
from inbedder_core.errors import CorpusError, ExportError
from inbedder_core.sharded import EncoderSpec, embed_shards, resolve_inputs

WORDS = "card cash money refund fee pin phone app lost stolen arrived payment transfer account".split()
QUESTIONS = ["what is it about?", "how does the customer feel?"]


def write_shards(folder, n_files=3, rows=30, ids=True, suffix="csv"):
    """``n_files`` shards of ``rows`` documents each; returns {file name: (ids or None, texts)}."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for f in range(n_files):
        texts = [" ".join(WORDS[(f * 7 + r + j) % len(WORDS)] for j in range(3 + r % 4)) + f" n{f}x{r}"
                 for r in range(rows)]
        frame = pd.DataFrame({"text": texts})
        if ids:
            frame.insert(0, "id", [f"d{f}-{r:03d}" for r in range(rows)])
        name = f"shard-{f}.{suffix}"
        frame.to_csv(folder / name, index=False) if suffix == "csv" else frame.to_parquet(folder / name)
        made[name] = (frame["id"].tolist() if ids else None, texts)
    return made


@pytest.fixture
def spec(tiny_roberta):
    return EncoderSpec(model=str(tiny_roberta), device="cpu")


def test_each_input_file_gives_one_shard_with_every_row_once_per_instruction(tmp_path, spec, tiny_roberta):
    made = write_shards(tmp_path / "in")
    report = embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.parquet")) == [f"part-0000{i}.parquet" for i in range(3)]
    assert (report.n_documents, report.n_embedded, report.shards_written, report.shards_skipped) == (90, 90, 3, 0)
    assert report.n_encoded == 180 and report.n_cached == 0 and report.docs_per_second > 0
    direct = load_encoder(str(tiny_roberta), device="cpu")
    for index, (ids, texts) in enumerate(made.values()):
        part = tmp_path / "out" / f"part-{index:05d}.parquet"
        for number, question in enumerate(QUESTIONS, start=1):
            got_ids, vectors, answers = read_embeddings(part, number)
            assert got_ids == ids
            want = direct.encode(texts, question)
            np.testing.assert_allclose(vectors, want.embeddings, atol=1e-5)
            assert answers == want.answers
        meta = json.loads(pq.read_schema(part).metadata[b"inbedder"])
        assert meta["fingerprint"]["model_id"] and meta["instructions"] == QUESTIONS
    again = embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8)
    assert (again.shards_skipped, again.shards_written, again.n_embedded) == (3, 0, 0)


def test_a_run_stopped_by_sigint_resumes_with_only_the_unfinished_shards(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=4, rows=24)
    out = tmp_path / "out"
    seen = []

    def stop_after_first_shard(done, total):
        seen.append(done)
        if done >= 24 and len(seen) == 3:  # batches of 8: the third batch finishes the first file
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        embed_shards([tmp_path / "in"], out, QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8,
                     progress=stop_after_first_shard)
    assert [p.name for p in out.glob("*.parquet")] == ["part-00000.parquet"]
    assert not list(out.glob(".*tmp")), "the unfinished shard's temporary file is removed"
    first = (out / "part-00000.parquet").stat().st_mtime_ns
    resumed = embed_shards([tmp_path / "in"], out, QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8)
    assert (resumed.shards_skipped, resumed.shards_written, resumed.n_embedded) == (1, 3, 72)
    assert resumed.n_cached == 0 and resumed.n_encoded == 144, "the first shard's rows are not embedded again"
    assert (out / "part-00000.parquet").stat().st_mtime_ns == first
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["shards"]) == [f"part-0000{i}.parquet" for i in range(4)]


def test_a_rerun_into_a_new_folder_takes_every_vector_from_the_cache(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=2, rows=12)
    embed_shards([tmp_path / "in"], tmp_path / "one", QUESTIONS, encoder=spec)
    again = embed_shards([tmp_path / "in" / "shard-1.csv", tmp_path / "in" / "shard-0.csv"], tmp_path / "two",
                         QUESTIONS, encoder=spec)
    assert (again.n_encoded, again.n_cached) == (0, 48)
    uncached = embed_shards([tmp_path / "in"], tmp_path / "three", QUESTIONS,
                            encoder=EncoderSpec(model=spec.model, device="cpu", use_cache=False))
    assert (uncached.n_encoded, uncached.n_cached) == (48, 0)


def test_rows_without_ids_get_row_numbers_per_file_and_parquet_reads_alike(tmp_path, spec):
    made = write_shards(tmp_path / "in", n_files=2, rows=5, ids=False, suffix="parquet")
    report = embed_shards([str(tmp_path / "in" / "*.parquet")], tmp_path / "out", QUESTIONS[:1], encoder=spec)
    assert report.n_documents == 10
    ids, _, _ = read_embeddings(tmp_path / "out" / "part-00001.parquet")
    assert ids == [f"shard-1.parquet:{n}" for n in range(1, 6)]
    assert list(made) == ["shard-0.parquet", "shard-1.parquet"]



def test_csv_blank_lines_and_line_breaks_in_quotes_number_rows_as_load_corpus_does(tmp_path, spec):
    from inbedder_core.io.load import load_corpus

    numbered = tmp_path / "numbered" / "x.csv"
    numbered.parent.mkdir()
    numbered.write_text('text,note\nmy card,a\n\n"lost\nphone",b\nrefund,c\n')  # row 2 blank; row 3 on two lines
    corpus = load_corpus(numbered)
    assert corpus.ids == ["1", "3", "4"] and corpus.texts[1] == "lost\nphone"
    report = embed_shards([numbered], tmp_path / "out", QUESTIONS[:1], encoder=spec)
    assert report.n_documents == 4 and report.n_no_text == 1  # the blank row, counted as load_corpus skips it
    encoding, _ = read_for_corpus(tmp_path / "out", QUESTIONS[0], corpus.ids)  # every document has its own vector
    expected = load_encoder(spec.model, device="cpu").encode(corpus.texts, QUESTIONS[0]).embeddings
    assert np.allclose(encoding.embeddings, expected, atol=1e-5)

    named = tmp_path / "named" / "x.csv"
    named.parent.mkdir()
    named.write_text('id,text\na,my card\n\nb,"lost\nphone"\n')  # a blank line holds no id: left out
    embed_shards([named], tmp_path / "out2", QUESTIONS[:1], encoder=spec)
    assert read_embeddings(tmp_path / "out2" / "part-00000.parquet")[0] == ["a", "b"] == load_corpus(named).ids

def test_missing_text_is_embedded_as_empty_and_counted(tmp_path, spec):
    (tmp_path / "in").mkdir()
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["my card", None, "refund"]}).to_parquet(tmp_path / "in" / "x.parquet")
    report = embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS[:1], encoder=spec)
    assert report.n_no_text == 1
    assert read_embeddings(tmp_path / "out" / "part-00000.parquet")[0] == ["a", "b", "c"]


def test_repeated_ids_are_refused_before_any_embedding_and_named(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=2, rows=3)
    frame = pd.read_csv(tmp_path / "in" / "shard-1.csv")
    frame.loc[2, "id"] = "d0-001"
    frame.to_csv(tmp_path / "in" / "shard-1.csv", index=False)
    with pytest.raises(CorpusError, match=r"'d0-001' \('shard-0.csv' and 'shard-1.csv'\)"):
        embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec)
    assert not (tmp_path / "out").exists()


def test_a_shard_that_lost_rows_is_named_and_redone_by_the_next_run(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=2, rows=6)
    embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec)
    part = tmp_path / "out" / "part-00001.parquet"
    table = pq.read_table(part)
    pq.write_table(table.filter(np.asarray(table.column("doc_id").to_pylist()) != "d1-004"), part)
    with pytest.raises(ExportError, match=r"1 input row\(s\) missing.*d1-004"):
        embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec)
    redone = embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec)
    assert (redone.shards_skipped, redone.shards_written) == (1, 1)
    assert "d1-004" in read_embeddings(part)[0]


def test_an_out_folder_of_another_job_is_refused(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=1, rows=3)
    embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS[:1], encoder=spec)
    with pytest.raises(ExportError, match="another job.*instructions"):
        embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec)


def test_bad_inputs_get_one_clear_error(tmp_path, spec):
    write_shards(tmp_path / "in", n_files=1, rows=3)
    with pytest.raises(CorpusError, match="does not exist"):
        resolve_inputs([tmp_path / "nope.csv"])
    with pytest.raises(CorpusError, match="no file matches"):
        resolve_inputs([str(tmp_path / "*.tsv")])
    write_shards(tmp_path / "in", n_files=1, rows=3, suffix="parquet")
    with pytest.raises(CorpusError, match="mix .csv and .parquet"):
        resolve_inputs([tmp_path / "in"])
    with pytest.raises(CorpusError, match="column 'body' not found.*--text-column"):
        embed_shards([tmp_path / "in" / "shard-0.csv"], tmp_path / "out", QUESTIONS, encoder=spec, text_column="body")
    with pytest.raises(ExportError, match="must be a folder"):
        embed_shards([tmp_path / "in" / "shard-0.csv"], tmp_path / "out.parquet", QUESTIONS, encoder=spec)


def test_a_resume_with_another_encoder_behind_the_same_name_is_refused(tmp_path, tiny_roberta, tiny_bert):
    import shutil

    write_shards(tmp_path / "in", n_files=2, rows=8)
    model = tmp_path / "model"
    shutil.copytree(tiny_roberta, model)
    spec = EncoderSpec(model=str(model), device="cpu")
    with pytest.raises(KeyboardInterrupt):
        embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8,
                     progress=lambda done, total: signal.raise_signal(signal.SIGINT))
    shutil.rmtree(model)
    shutil.copytree(tiny_bert, model)  # other weights under the same path: the fingerprint's revision differs
    with pytest.raises(ExportError, match="another encoder.*revision"):
        embed_shards([tmp_path / "in"], tmp_path / "out", QUESTIONS, encoder=spec, batch_size=8, rows_per_call=8)
    assert [p.name for p in (tmp_path / "out").glob("*.parquet")] == ["part-00000.parquet"]


def test_the_command_line_embeds_a_folder_of_shards_and_says_how_fast(tmp_path, tiny_roberta, capsys):
    from inbedder_core.cli import main

    write_shards(tmp_path / "in", n_files=2, rows=5)
    common = ["--model", str(tiny_roberta), "--device", "cpu", "-i", QUESTIONS[0], "--quiet"]
    assert main(["embed", str(tmp_path / "in"), *common, "--out", str(tmp_path / "out")]) == 0
    assert len(read_embeddings(tmp_path / "out" / "part-00001.parquet")[0]) == 5
    assert main(["embed", str(tmp_path / "in"), *common[:-1], "--out", str(tmp_path / "out")]) == 0
    assert "0 shard(s) written, 2 already finished and skipped" in capsys.readouterr().err
    for extra, message in ((["--out", str(tmp_path / "x.parquet"), "--ray"], "pass --out FOLDER"),
                           (["--out", str(tmp_path / "o2"), "--actors", "2"], "need --ray"),
                           (["--out", str(tmp_path / "o3"), "--max-rows", "3"], "--max-rows: not for a sharded run")):
        assert main(["embed", str(tmp_path / "in"), *common, *extra]) == 2
        assert message in capsys.readouterr().err


def test_one_file_embeddings_are_written_block_by_block_and_read_back_whole(tmp_path):
    """``inbedder embed FILE --out FILE`` writes block by block (bounded memory): the Parquet file holds one
    row group per block and instruction, and reads back as every document in order; the .npy likewise."""
    from inbedder_core.embedding_io import open_embeddings
    from inbedder_core.encoder import HashEncoder

    encoder = HashEncoder(dim=8)
    texts = [f"document number {i} about {'cards' if i % 2 else 'loans'}" for i in range(25)]
    ids = [f"id-{i}" for i in range(25)]
    questions = ["What is it about?", "Which number?"]
    out = tmp_path / "emb.parquet"
    with open_embeddings(out, len(texts), questions, encoder.fingerprint, "corpus.csv") as writer:
        for start in range(0, 25, 10):
            block = texts[start:start + 10]
            writer.write(ids[start:start + 10], [encoder.encode(block, q) for q in questions])
        assert not out.exists()  # the file appears only once complete
    assert writer.written == [out] and pq.ParquetFile(out).num_row_groups == 6
    for number, question in enumerate(questions, start=1):
        got_ids, vectors, answers = read_embeddings(out, number)
        whole = encoder.encode(texts, question)
        assert got_ids == ids and np.allclose(vectors, whole.embeddings) and answers == whole.answers
        # the clustering side reads a few rows at a time, for any order of the corpus's ids
        shuffled = ids[::-1]
        for rows in (3, 16_384):
            encoding, meta = read_for_corpus(out, question, shuffled, batch_rows=rows)
            assert np.allclose(encoding.embeddings, whole.embeddings[::-1]) and encoding.answers == whole.answers[::-1]
            assert meta["instructions"] == questions
    npy = tmp_path / "emb.npy"
    with open_embeddings(npy, len(texts), questions[:1], encoder.fingerprint, "corpus.csv") as writer:
        for start in range(0, 25, 10):
            writer.write(ids[start:start + 10], [encoder.encode(texts[start:start + 10], questions[0])])
    assert np.allclose(np.load(npy), encoder.encode(texts, questions[0]).embeddings)
    sidecar = json.loads(npy.with_suffix(".answers.json").read_text())
    assert sidecar["ids"] == ids and len(sidecar["answers"]) == 25
    with pytest.raises(ExportError, match="holds one instruction, got 2"):
        with open_embeddings(tmp_path / "two.npy", 3, questions, encoder.fingerprint, "c.csv"):
            pass
    failed = tmp_path / "failed.parquet"
    with pytest.raises(RuntimeError), open_embeddings(failed, 25, questions, encoder.fingerprint, "c.csv") as writer:
        writer.write(ids[:10], [encoder.encode(texts[:10], q) for q in questions])
        raise RuntimeError("interrupted")
    assert not failed.exists() and not list(tmp_path.glob(".failed*"))
