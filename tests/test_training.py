"""Training: answer-only labels, loss going down, checkpoints that resume, saved models that load,
and the bundled offline InBedder."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from inbedder_core.cli import add_train_command
from inbedder_core.encoder import CausalLMEncoder, MaskedLMEncoder, load_encoder
from inbedder_core.prompts import INBEDDER_PATTERN, split_pattern
from inbedder_core.training import (
    IGNORE_INDEX,
    FeatureBuilder,
    QAExample,
    TrainingError,
    TrainSettings,
    collate,
    load_base,
    read_examples,
    train,
)

FEEL = "how does the customer feel ?"
NEED = "what does the customer need ?"
ROWS = [
    ("my card was stolen", FEEL, "angry"), ("my card was stolen", NEED, "card"),
    ("i want a refund please", FEEL, "frustrated"), ("i want a refund please", NEED, "refund"),
    ("the app is not working", FEEL, "confused"), ("the app is not working", NEED, "help"),
    ("my money arrived thank you", FEEL, "grateful"), ("my money arrived thank you", NEED, "money"),
    ("why was my payment declined", FEEL, "worried"), ("why was my payment declined", NEED, "payment"),
    ("i lost my phone and my pin", FEEL, "sad"), ("i lost my phone and my pin", NEED, "pin"),
    ("the exchange rate fee is not what the app said", FEEL, "angry"),
    ("the exchange rate fee is not what the app said", NEED, "exchange rate"),
    ("top up my account with cash", FEEL, "happy"), ("top up my account with cash", NEED, "top up"),
    ("where is my order of shoes", FEEL, "worried"), ("where is my order of shoes", NEED, "order"),
    ("coffee and pizza with you", FEEL, "happy"), ("coffee and pizza with you", NEED, "coffee and pizza"),
    ("", "who is the doctor in the hospital ?", "the doctor"), ("", "what is the weather ?", "rain"),
    ("the football game is on the news", "what is on the news ?", "football game"),
    ("i still can not arrive", FEEL, "frustrated"), ("i still can not arrive", NEED, "help"),
    ("tell me a book or a song", NEED, "book"), ("tell me a book or a song", FEEL, "happy"),
    ("the movie was sad", FEEL, "sad"), ("the movie was sad", "what was sad ?", "the movie"),
    ("my transfer is still waiting", NEED, "transfer"), ("my transfer is still waiting", FEEL, "worried"),
    ("thank you for the help", FEEL, "grateful"),
]


def write_data(folder, rows=ROWS, license_text="CC0 1.0", group=None):
    """The rows as a JSONL source with its SOURCE.txt; ``group(question, answer)`` adds each row's group."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i, (context, question, answer) in enumerate(rows):
            row = {"id": i, "source": "toyqa", "context": context, "question": question, "answer": answer}
            if group is not None:
                row["group"] = group(question, answer)
            handle.write(json.dumps(row) + "\n")
    (folder / "SOURCE.txt").write_text(f"repo: example/toyqa\ncommit: abc\nlicense: {license_text}\n")
    return path


def settings_for(model, data, out, tmp_path, **overrides):
    options = dict(model=str(model), data=[str(data)], output_dir=str(out), batch_size=8, learning_rate=3e-3,
                   warmup_ratio=0.0, max_steps=30, log_steps=5, save_steps=10, seed=0, device="cpu",
                   max_length=64, checkpoint_dir=str(tmp_path / f"ckpt-{out.name}"))
    options.update(overrides)
    return TrainSettings(**options)


@pytest.fixture(scope="module")
def roberta_parts(tiny_roberta, tmp_path_factory):
    data = write_data(tmp_path_factory.mktemp("data"))
    settings = TrainSettings(model=str(tiny_roberta), data=[str(data)], output_dir="unused")
    model, tokenizer, kind, _ = load_base(settings, lambda message: None)
    return model, tokenizer, kind


def test_masked_features_label_only_the_mask_slots_and_match_the_encoder_prompt(roberta_parts):
    model, tokenizer, kind = roberta_parts
    assert kind == "masked"
    settings = TrainSettings(model="x", data=["x"], output_dir="x", max_length=64)
    builder = FeatureBuilder(model, tokenizer, kind, settings)
    example = QAExample("my card was stolen", FEEL, "angry")
    feature = builder.build(example)
    encoder = MaskedLMEncoder(model, tokenizer, n_masks=3, model_id="t", revision="t", pattern=INBEDDER_PATTERN,
                              device="cpu", dtype="float32", max_length=64, padding_side="right")
    assert feature.input_ids == encoder.tokenize(split_pattern(INBEDDER_PATTERN, example.context, example.question))
    masks = [i for i, t in enumerate(feature.input_ids) if t == tokenizer.mask_token_id]
    assert len(masks) == 3 and masks == list(range(masks[0], masks[0] + 3))
    labeled = [i for i, label in enumerate(feature.labels) if label != IGNORE_INDEX]
    assert labeled == masks
    assert feature.labels[masks[0]] == tokenizer.convert_tokens_to_ids("angry")
    assert feature.labels[masks[1]] == feature.labels[masks[2]] == tokenizer.eos_token_id  # "eos" fill

    long_answer = builder.build(QAExample("my card was stolen", NEED, "my card was stolen money"))
    answer_ids = tokenizer("my card was stolen money", add_special_tokens=False)["input_ids"][:3]
    assert [long_answer.labels[i] for i in masks] == answer_ids  # truncated to n_masks tokens

    ignore = FeatureBuilder(model, tokenizer, kind, TrainSettings(model="x", data=["x"], output_dir="x",
                                                                  mask_fill="ignore")).build(example)
    assert [i for i, label in enumerate(ignore.labels) if label != IGNORE_INDEX] == [masks[0]]
    variable = FeatureBuilder(model, tokenizer, kind, TrainSettings(model="x", data=["x"], output_dir="x",
                                                                    mask_fill="variable")).build(example)
    assert variable.input_ids.count(tokenizer.mask_token_id) == 1
    assert len(variable.input_ids) == len(feature.input_ids) - 2


def test_causal_features_label_the_answer_and_eos_only(tiny_llama):
    settings = TrainSettings(model=str(tiny_llama), data=["x"], output_dir="x", max_length=64)
    model, tokenizer, kind, _ = load_base(settings, lambda message: None)
    assert kind == "causal"
    builder = FeatureBuilder(model, tokenizer, kind, settings)
    example = QAExample("my card was stolen", NEED, "card")
    feature = builder.build(example)
    encoder = CausalLMEncoder(model, tokenizer, model_id="t", revision="t", pattern=INBEDDER_PATTERN, device="cpu",
                              dtype="float32", max_length=64, padding_side="right")
    prompt = encoder.tokenize(split_pattern(INBEDDER_PATTERN, example.context, example.question))
    answer = tokenizer("card", add_special_tokens=False)["input_ids"]
    assert feature.input_ids == prompt + answer + [tokenizer.eos_token_id]
    assert feature.labels == [IGNORE_INDEX] * len(prompt) + answer + [tokenizer.eos_token_id]

    short = builder.build(QAExample("pin", NEED, "pin"))
    batch = collate([feature, short], builder.pad_id)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    padding = batch["attention_mask"] == 0
    assert padding.any() and (batch["labels"][padding] == IGNORE_INDEX).all()
    assert (batch["input_ids"][padding] == builder.pad_id).all()


def test_training_lowers_the_loss_saves_a_card_and_loads_as_an_inbedder(tiny_roberta, tmp_path):
    data = write_data(tmp_path / "data")
    out = tmp_path / "model"
    result = train(settings_for(tiny_roberta, data, out, tmp_path, name="toy-inbedder", license="mit"))
    losses = [loss for _, loss in result.state.losses]
    assert result.finished and result.state.step == 30 and result.kind == "masked"
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.state.examples_seen == 30 * 8
    card = (out / "README.md").read_text()
    assert "toyqa" in card and "CC0 1.0" in card and "example/toyqa" in card and str(tiny_roberta) in card
    meta = json.loads((out / "inbedder_training.json").read_text())
    assert meta["steps"] == 30 and meta["sources"][0]["n_examples"] == len(ROWS)
    encoder = load_encoder(str(out))
    assert isinstance(encoder, MaskedLMEncoder)
    feel = encoder.encode(["my card was stolen", "thank you for the help"], FEEL)
    need = encoder.encode(["my card was stolen", "thank you for the help"], NEED)
    assert feel.embeddings.shape == (2, 32) and np.isfinite(feel.embeddings).all()
    assert not np.allclose(feel.embeddings, need.embeddings, atol=1e-4)


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_roberta, tmp_path):
    from safetensors.numpy import load_file

    data = write_data(tmp_path / "data")
    whole = train(settings_for(tiny_roberta, data, tmp_path / "whole", tmp_path, max_steps=6, save_steps=2))
    assert whole.state.step == 6
    parted = settings_for(tiny_roberta, data, tmp_path / "parted", tmp_path, max_steps=6, save_steps=2,
                          max_minutes=1e-9)
    first = train(parted)  # the time limit stops it after one step, with a checkpoint
    assert not first.finished and first.state.step == 1 and first.state.stopped_by_time
    assert (first.checkpoint_dir / "last" / "optimizer.pt").exists()
    with pytest.raises(TrainingError, match="--resume"):
        train(parted)  # a fresh start would silently drop the checkpoint
    parted.max_minutes = None
    second = train(parted, resume=True)
    assert second.finished and second.state.step == 6
    assert second.state.examples_seen == whole.state.examples_seen
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "parted" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    load_encoder(str(tmp_path / "parted"))

    changed = settings_for(tiny_roberta, data, tmp_path / "parted", tmp_path, max_steps=6, save_steps=2,
                           learning_rate=1e-2)
    with pytest.raises(TrainingError, match="other settings"):
        train(changed, resume=True)


def test_a_masked_model_saves_the_answers_of_its_grouped_examples(tiny_roberta, tmp_path):
    """``answers.json``: the answers of examples with a ``group`` given at least 3 times; the encoder reads it."""
    path = write_data(tmp_path / "data", group=lambda question, answer: f"feel:{answer}" if question == FEEL else "")
    out = tmp_path / "model"
    train(settings_for(tiny_roberta, path, out, tmp_path, max_steps=2))
    content = json.loads((out / "answers.json").read_text())
    # the feeling answers given 3 times ("angry", "frustrated", "grateful" and "sad" come twice)
    assert set(content["answers"]) == {"worried", "happy"}
    encoder = load_encoder(str(out))
    assert encoder.pooling.endswith(";mended-answers:2")
    # the tokens the slots were trained on: every answer's first n_masks tokens, and the end token
    tokenizer = encoder.tokenizer
    expected = {t for _, _, answer in ROWS for t in tokenizer(answer, add_special_tokens=False)["input_ids"][:3]}
    assert set(content["tokens"]) == expected | {encoder.end_token_id}
    assert set(encoder._answer_tokens.tolist()) == set(content["tokens"])
    train(settings_for(tiny_roberta, write_data(tmp_path / "plain"), out, tmp_path, max_steps=2), overwrite=True)
    assert not (out / "answers.json").exists()  # no grouped example: no lexicon, argmax answers


def test_causal_training_runs_and_loads(tiny_llama, tmp_path):
    data = write_data(tmp_path / "data")
    result = train(settings_for(tiny_llama, data, tmp_path / "llama", tmp_path, max_steps=12))
    losses = [loss for _, loss in result.state.losses]
    assert result.kind == "causal" and losses[-1] < losses[0]
    encoder = load_encoder(str(tmp_path / "llama"))
    assert isinstance(encoder, CausalLMEncoder)
    assert encoder.encode(["my card was stolen"], FEEL).embeddings.shape == (1, 32)


def test_bad_data_and_occupied_output_are_clear_errors(tiny_roberta, tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        read_examples([tmp_path / "missing.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(TrainingError, match="line 1 is not JSON"):
        read_examples([bad])
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"context": "x", "question": "", "answer": "y"}) + "\n")
    with pytest.raises(TrainingError, match="no record"):
        read_examples([empty])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    data = write_data(tmp_path / "data")
    with pytest.raises(TrainingError, match="not empty"):
        train(settings_for(tiny_roberta, data, occupied, tmp_path))
    with pytest.raises(TrainingError, match="mask_fill"):
        settings_for(tiny_roberta, data, occupied, tmp_path, mask_fill="zeros").check()


def test_train_command_runs_through_argparse(tiny_roberta, tmp_path):
    data = write_data(tmp_path / "data")
    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--model", str(tiny_roberta), "--data", str(data), "--output",
                              str(tmp_path / "cli-model"), "--max-steps", "2", "--batch-size", "4",
                              "--checkpoint-dir", str(tmp_path / "cli-ckpt"), "--quiet"])

    class Reporter:
        quiet = True
        notes: list[str] = []

        def note(self, message):
            self.notes.append(message)

        def progress(self, description):
            raise AssertionError("no progress bar when quiet")

    reporter = Reporter()
    assert args.func(args, reporter) == 0
    assert any("2 steps" in n for n in reporter.notes)
    assert (tmp_path / "cli-model" / "config.json").exists()


# --- the bundled offline InBedder ------------------------------------------------------------------


def test_bundled_inbedder_materialises_offline_and_follows_the_instruction(tmp_path):
    from inbedder_core.models import BUNDLE_ROOT, bundled_model_path, materialise

    assert bundled_model_path("not-a-bundle") is None
    path = bundled_model_path("inbedder-minilm", cache_dir=tmp_path)
    assert path is not None and path.parent == tmp_path / "models"
    assert bundled_model_path("InBedder-MiniLM", cache_dir=tmp_path) == path  # materialised once
    assert not (path / "modules.json").exists()
    encoder = load_encoder(str(path))
    assert isinstance(encoder, MaskedLMEncoder) and encoder.dimension == 384
    texts = ["I am so happy, my new card arrived today!", "Please cancel my card, it was stolen."]
    feel = encoder.encode(texts, "How does the customer feel?")
    need = encoder.encode(texts, "What does the customer need?")
    assert feel.embeddings.shape == (2, 384) and np.isfinite(feel.embeddings).all()
    assert not np.allclose(feel.embeddings, need.embeddings, atol=1e-3)
    assert feel.answers is not None and len(feel.answers) == 2

    copy = tmp_path / "bundle-copy"
    shutil.copytree(BUNDLE_ROOT / "inbedder-minilm", copy)
    (copy / "README.md").write_text("changed")
    assert materialise(copy, cache_dir=tmp_path) != path  # content-hashed: a changed bundle is a new folder


def test_load_encoder_resolves_the_bundled_name(tmp_path, monkeypatch):
    from inbedder_core.models import resolve_model

    monkeypatch.setenv("INBEDDER_CACHE_DIR", str(tmp_path))
    if not resolve_model("inbedder-minilm").is_local:
        pytest.skip("models.resolve_model does not know bundled names yet (lines in docs/training.md)")
    encoder = load_encoder("inbedder-minilm")
    assert encoder.kind == "masked" and encoder.model_id == "inbedder-minilm"


def test_export_bundle_refuses_to_empty_a_folder_that_is_not_a_bundle(tmp_path):
    from inbedder_core.errors import ModelError
    from inbedder_core.models import export_bundle

    out = tmp_path / "my-notes"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(ModelError, match="holds no bundle"):
        export_bundle(tmp_path / "no-model", out)
    assert (out / "thesis.txt").read_text() == "precious"
