"""The v2 training mix (balanced by kind of question, several questions per text, "does not apply"
answers) and the answer-supervised contrastive pieces of training (grouped batches, the loss)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from inbedder_core.training import (
    QAExample,
    TrainingError,
    TrainSettings,
    contrastive_loss,
    grouped_batch_order,
    read_examples,
    train,
)
from inbedder_core.training_mix import (
    NOT_APPLICABLE,
    QUESTIONS,
    answer_word,
    build_aspect_mix,
    candidates,
    check_questions,
)


def records():
    rows = []
    for i in range(60):
        rows.append({"source": "reviews", "text": f"review number {i} of a phone",
                     "labels": {"sentiment": "positive" if i % 3 else "negative", "drug": f"drug {i % 4}"}})
    for i in range(40):
        rows.append({"source": "news", "text": f"nouvelles {i}", "labels": {"language": "french", "topic":
                     "sports" if i % 2 else "politics"}})
    for i in range(200):  # a big source must not crowd the others out
        rows.append({"source": "bigspam", "text": f"win money now {i}", "labels": {"spam": "spam"}})
    return rows


def test_mix_is_balanced_by_kind_not_by_dataset_size():
    mix = build_aspect_mix(records(), 300, seed=1)
    kinds = Counter(e.group.partition(":")[0] for e in mix)
    # the spam source has 200 texts but a single answer; the kind weights, not its size, decide its share
    assert kinds["spam"] < kinds["sentiment"]
    assert kinds["language"] > 0 and kinds["topic"] > 0
    assert all(e.group == f"{e.group.partition(':')[0]}:{e.answer}" for e in mix)


def test_inside_a_kind_answers_are_spread_evenly():
    mix = build_aspect_mix(records(), 400, seed=2, not_applicable_share=0.0)
    sentiment = Counter(e.answer for e in mix if e.group.startswith("sentiment:"))
    # 40 positive and 20 negative texts exist: round robin takes negatives as often as positives while they last
    assert abs(sentiment["positive"] - sentiment["negative"]) <= max(2, sentiment["negative"] // 2) or \
        sentiment["negative"] == 20


def test_one_text_is_asked_several_questions():
    mix = build_aspect_mix(records(), 600, seed=3)
    kinds_per_text: dict[str, set[str]] = {}
    for e in mix:
        kinds_per_text.setdefault(e.context, set()).add(e.group.partition(":")[0])
    assert max(len(k) for k in kinds_per_text.values()) >= 2


def test_questions_that_do_not_apply_are_answered_none():
    pools = candidates(records())
    # "Which product is reviewed?" of a news text: none; of a review: the drug named by its label
    assert {row[1] for row in pools["product:none"]} == {NOT_APPLICABLE}
    assert all(row[2] != "reviews" for row in pools["product:none"])
    mix = build_aspect_mix(records(), 400, seed=4)
    product = [e for e in mix if e.group.startswith("product:")]
    assert any(e.answer == NOT_APPLICABLE for e in product) and any(e.answer != NOT_APPLICABLE for e in product)
    for e in product:
        assert e.question in QUESTIONS["product"]


def test_texts_without_a_language_label_are_english_and_held_out_sources_are_left_out():
    pools = candidates(records(), exclude_sources=["news"])
    assert {row[1] for row in pools["language"]} == {"english"}
    assert all(row[2] != "news" for rows in pools.values() for row in rows)


def test_emotion_words_are_kept_for_emotion_questions_only():
    # aspect kinds never ask an emotion question; the mix's sentiment answers are polarity words
    mix = build_aspect_mix(records(), 300, seed=5)
    assert {e.answer for e in mix if e.group.startswith("sentiment:")} <= {"positive", "negative", "neutral"}
    assert "emotion" not in QUESTIONS


def test_long_labels_get_short_answers_and_eval_instructions_are_refused():
    assert answer_word("Ethnic or National  Origin") == "ethnicity"
    assert answer_word("Positive") == "positive"
    check_questions(["Is this a joke?"], ["What is the topic?"])
    with pytest.raises(ValueError, match="what is the topic"):
        check_questions(["What is the topic?"], ["what is the topic?"])


def test_grouped_batches_use_every_example_once_and_hold_few_kinds():
    groups = [f"k{i % 5}:a{i % 3}" for i in range(200)] + [""] * 40
    batches = grouped_batch_order(groups, 16, 4, seed=0, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(240))
    kinds_in = [len({groups[i].partition(":")[0] for i in b}) for b in batches]
    assert max(kinds_in) <= 4
    assert batches == grouped_batch_order(groups, 16, 4, seed=0, epoch=0)
    assert batches != grouped_batch_order(groups, 16, 4, seed=0, epoch=1)


def test_contrastive_loss_prefers_same_answer_rows_together():
    import torch

    groups = ["s:pos", "s:pos", "s:neg", "s:neg", ""]
    together = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [0.7, 0.7]])
    apart = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.99, 0.1], [0.1, 0.99], [0.7, 0.7]])
    good = contrastive_loss(together, groups, 0.1)
    bad = contrastive_loss(apart, groups, 0.1)
    assert float(good) < float(bad)
    # no positives at all: zero, and still differentiable
    lonely = torch.randn(3, 4, requires_grad=True)
    zero = contrastive_loss(lonely, ["a:1", "a:2", ""], 0.1)
    zero.backward()
    assert float(zero.detach()) == 0.0


def test_group_is_read_from_the_data_and_contrastive_training_runs(tiny_roberta, tmp_path):
    data = tmp_path / "mix.jsonl"
    rows = []
    for i in range(48):
        label = ("happy", "angry", "sad")[i % 3]
        need = ("card", "refund", "help", "money")[i % 4]
        text = f"my card was stolen {i % 7}"
        rows.append({"context": text, "question": "how does the customer feel ?", "answer": label,
                     "source": "toy", "group": f"feel:{label}"})
        rows.append({"context": text, "question": "what does the customer need ?", "answer": need,
                     "source": "toy", "group": f"need:{need}"})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    examples, _ = read_examples([data])
    assert examples[0] == QAExample(rows[0]["context"], rows[0]["question"], "happy", "toy", "feel:happy")
    settings = TrainSettings(model=str(tiny_roberta), data=[str(data)], output_dir=str(tmp_path / "out"),
                             batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, max_steps=8, log_steps=4,
                             save_steps=4, seed=0, device="cpu", max_length=64, contrastive_weight=0.5,
                             kinds_per_batch=2, checkpoint_dir=str(tmp_path / "ckpt"))
    result = train(settings)
    assert result.finished and result.state.step == 8
    assert all(loss == loss for _, loss in result.state.losses)  # finite
    with pytest.raises(TrainingError, match="kinds_per_batch"):
        TrainSettings(model="x", data=["y"], output_dir="z", batch_size=4, kinds_per_batch=9).check()
