"""Stage train: fine-tune a language model into an InBedder (``inbedder train`` in ``cli``).

An InBedder is a language model taught to answer questions about a text with *short* answers (Peng et
al., ACL 2024); its embedding is the hidden state where the answer is produced. ``data`` (examples and
attribution), ``settings`` (``TrainSettings``), ``checkpoints``, ``mix`` (the bundled model's data mix)
<- ``base`` (the base model), ``features`` (prompts, labels, batch order), ``card`` (the saved model)
<- ``loss`` <- ``run`` (``train``). Heavy libraries are imported inside functions.
"""

from __future__ import annotations

from .base import choose_kind, freeze, load_base
from .card import TRAINING_FILE, model_card, save_model, training_metadata
from .checkpoints import TrainState, find_checkpoint, load_checkpoint, save_checkpoint
from .data import DataSource, QAExample, iter_jsonl, read_examples
from .features import IGNORE_INDEX, Feature, FeatureBuilder, batch_order, collate, grouped_batch_order
from .loss import answer_loss, contrastive_loss
from .mix import (
    ASPECT_KINDS,
    KIND_WEIGHTS,
    NOT_APPLICABLE,
    NOT_APPLICABLE_KINDS,
    QUESTIONS,
    SHORT_ANSWERS,
    SOURCE_TEXT_KIND,
    STANCE_WITH_TARGET,
    MixExample,
    answer_word,
    build_aspect_mix,
    candidates,
    check_questions,
)
from .run import ProgressFactory, TrainResult, format_duration, train
from .settings import MASK_FILLS, PRECISIONS, MaskFill, TrainSettings

__all__ = [
    "QAExample",
    "DataSource",
    "read_examples",
    "iter_jsonl",
    "MaskFill",
    "MASK_FILLS",
    "PRECISIONS",
    "TrainSettings",
    "TrainState",
    "save_checkpoint",
    "find_checkpoint",
    "load_checkpoint",
    "choose_kind",
    "load_base",
    "freeze",
    "IGNORE_INDEX",
    "Feature",
    "FeatureBuilder",
    "collate",
    "batch_order",
    "grouped_batch_order",
    "contrastive_loss",
    "answer_loss",
    "TRAINING_FILE",
    "save_model",
    "training_metadata",
    "model_card",
    "ProgressFactory",
    "TrainResult",
    "train",
    "format_duration",
    "ASPECT_KINDS",
    "KIND_WEIGHTS",
    "NOT_APPLICABLE",
    "NOT_APPLICABLE_KINDS",
    "QUESTIONS",
    "SHORT_ANSWERS",
    "SOURCE_TEXT_KIND",
    "STANCE_WITH_TARGET",
    "MixExample",
    "answer_word",
    "build_aspect_mix",
    "candidates",
    "check_questions",
]
