"""Cluster edits: each operation, replay order, undo/redo, the log on disk, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from inbedder_core.analysis import summarize_clusters
from inbedder_core.edits import (
    Edit,
    EditError,
    EditLog,
    apply_edits,
    load_edits,
    merge_edit,
    move_edit,
    not_interesting_edit,
    rename_edit,
    save_edits,
    split_edit,
)
from inbedder_core.results import NOISE, ClusterName, InstructionResult


def base() -> InstructionResult:
    labels = np.array([0] * 6 + [1] * 4 + [2] * 3 + [NOISE] * 2, dtype=np.int64)
    answers = ["card"] * 6 + ["pin"] * 4 + ["atm"] * 3 + ["?"] * 2
    names = [ClusterName(0, "Cards", "card things"), ClusterName(1, "PINs", "pin things"),
             ClusterName(2, "ATMs", "atm things")]
    return InstructionResult("Q?", answers, labels, labels.copy(), np.zeros((15, 2), np.float32),
                             summarize_clusters(labels, names, answers))


def by_id(result: InstructionResult) -> dict:
    return {c.cluster_id: c for c in result.clusters}


def test_rename_keeps_the_generated_name_and_a_second_rename_keeps_the_first():
    r = base()
    once = apply_edits(r, [rename_edit(r, 0, "Card problems")])
    assert by_id(once)[0].name == "Card problems" and by_id(once)[0].generated_name == "Cards"
    twice = apply_edits(r, [rename_edit(r, 0, "Card problems"), rename_edit(once, 0, "Cards, again")])
    assert by_id(twice)[0].name == "Cards, again" and by_id(twice)[0].generated_name == "Cards"
    assert by_id(twice)[1].generated_name is None
    assert np.array_equal(twice.labels, r.labels) and r.clusters[0].name == "Cards"  # base untouched


def test_merge_gives_the_first_id_both_parts_and_recounts():
    r = base()
    merged = apply_edits(r, [merge_edit(r, [1, 2])])
    assert set(merged.labels.tolist()) == {0, 1, NOISE} and by_id(merged)[1].size == 7
    assert by_id(merged)[1].name == "PINs" and dict(by_id(merged)[1].top_answers) == {"pin": 4, "atm": 3}
    assert merged.quality["n_clusters"] == 2 and merged.quality["n_edits"] == 1


def test_split_reclusters_the_part_alone_and_replays_without_recomputing():
    r = base()
    vectors = np.zeros((15, 2), np.float32)
    vectors[:3] = [10, 10]
    edit = split_edit(r, 0, vectors)
    split = apply_edits(r, [edit])
    parts = sorted(set(split.labels[:6].tolist()))
    assert len(parts) == 2 and parts[0] == 0 and parts[1] > 2  # a fresh id
    assert sorted(np.bincount(split.labels[:6] - 0, minlength=0)[parts].tolist()) == [3, 3]
    assert by_id(split)[parts[1]].generated_name == "Cards"
    assert np.array_equal(apply_edits(r, [Edit.from_json(edit.as_json())]).labels, split.labels)
    with pytest.raises(EditError, match="cannot be told apart"):
        split_edit(r, 1, np.zeros((15, 2), np.float32))


def test_move_and_not_interesting_and_refusals():
    r = base()
    moved = apply_edits(r, [move_edit(r, [13, 14], 2), not_interesting_edit(r, 1)])
    assert moved.labels[13:].tolist() == [2, 2] and NOISE not in moved.labels
    assert by_id(moved)[1].interesting is False and by_id(moved)[0].interesting is True
    with pytest.raises(EditError, match="noise cannot be renamed"):
        rename_edit(r, NOISE, "x")
    with pytest.raises(EditError, match="two or more"):
        merge_edit(r, [1, 1])
    with pytest.raises(EditError, match="not a cluster"):
        merge_edit(r, [1, 9])
    with pytest.raises(EditError, match="does not fit"):
        apply_edits(r, [Edit("merge", "Q?", {"clusters": [0, 9]})])


def test_undo_redo_and_the_log_on_disk(tmp_path):
    r = base()
    log = EditLog()
    log.do(merge_edit(r, [0, 1]))
    log.do(rename_edit(apply_edits(r, log.edits), 0, "Cards and PINs"))
    assert by_id(apply_edits(r, log.edits))[0].name == "Cards and PINs"
    assert log.undo().op == "rename" and by_id(apply_edits(r, log.edits))[0].name == "Cards"
    assert log.redo().op == "rename" and log.redo() is None
    log.undo()
    log.do(not_interesting_edit(r, 2))  # a new edit clears the redo stack
    assert log.redo() is None
    save_edits(tmp_path, log)
    again = load_edits(tmp_path)
    assert again.as_json() == log.as_json() and [e.op for e in again.edits] == ["merge", "not_interesting"]
    assert load_edits(tmp_path / "nowhere").edits == []
    (tmp_path / "edits.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EditError, match="cannot be read"):
        load_edits(tmp_path)
