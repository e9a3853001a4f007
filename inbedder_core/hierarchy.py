"""Cluster hierarchy of one instruction: a tree over its clusters (HDBSCAN's condensed tree, or
Ward linkage of the cluster centroids), cuts of it at fewer clusters, merge suggestions, and its
icicle figure (pure plotly).

Leaves are the result's clusters (noise is left out). A cut at ``n`` groups joins leaves into
``n`` groups by undoing the latest splits of the tree; it relabels documents only (no
re-embedding, no UMAP), and each group keeps its smallest cluster id, so a cut is a set of
merges (``cut_merges``) that the edit log can record and undo. Cuts finer than the current
clusters are not offered: the leaves are the finest level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InBedderError
from .plots import plot_text
from .results import NOISE, InstructionResult


@dataclass
class TreeNode:
    """A node of the cluster tree: a leaf (``cluster`` set) or a join of its ``children``.

    ``height``: how far apart its children are (a distance; 0 for leaves); the latest split
    of the tree is the node with the largest height.
    """

    node: int
    children: list[int] = field(default_factory=list)
    height: float = 0.0
    cluster: int | None = None
    size: int = 0


@dataclass
class ClusterTree:
    """The tree of one result's clusters; ``source`` is ``"hdbscan"`` or ``"centroid-linkage"``."""

    nodes: dict[int, TreeNode]
    root: int
    source: str

    def leaves(self, node: int | None = None) -> list[int]:
        """Cluster ids under ``node`` (the root by default)."""
        item = self.nodes[self.root if node is None else node]
        if item.cluster is not None:
            return [item.cluster]
        return [c for child in item.children for c in self.leaves(child)]

    def parents(self) -> dict[int, int]:
        return {child: node.node for node in self.nodes.values() for child in node.children}


def _clusters(result: InstructionResult) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(result.labels, dtype=np.int64)
    ids = np.unique(labels[labels != NOISE])
    return labels, ids


def centroids_of(result: InstructionResult, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster ids int64 (k,), centroids float64 (k, d))`` of ``result``'s labels over ``vectors`` (n, d)."""
    labels, ids = _clusters(result)
    V = np.asarray(vectors, dtype=np.float64)
    if V.shape[0] != labels.shape[0]:
        raise InBedderError(f"{V.shape[0]} vectors for {labels.shape[0]} documents; pass the run's vectors")
    return ids, np.stack([V[labels == c].mean(axis=0) for c in ids]) if ids.size else np.zeros((0, V.shape[1]))


def linkage_tree(result: InstructionResult, vectors: np.ndarray) -> ClusterTree:
    """Ward linkage of the cluster centroids (``vectors``: the reduced vectors, or the 2-D map)."""
    labels, _ = _clusters(result)
    ids, centroids = centroids_of(result, vectors)
    sizes = {int(c): int((labels == c).sum()) for c in ids}
    nodes = {i: TreeNode(i, cluster=int(c), size=sizes[int(c)]) for i, c in enumerate(ids)}
    if len(ids) == 0:
        raise InBedderError(f"{result.instruction!r} has no cluster: there is no tree to draw")
    if len(ids) == 1:
        return ClusterTree(nodes, 0, "centroid-linkage")
    from scipy.cluster.hierarchy import linkage

    merges = linkage(centroids, method="ward")
    for step, (a, b, height, _) in enumerate(merges):
        node = len(ids) + step
        a, b = int(a), int(b)
        nodes[node] = TreeNode(node, [a, b], float(height), size=nodes[a].size + nodes[b].size)
    return ClusterTree(nodes, len(ids) + len(merges) - 1, "centroid-linkage")


def condensed_tree(result: InstructionResult, model: Any) -> ClusterTree:
    """The tree HDBSCAN built (``model``: the fitted ``hdbscan.HDBSCAN`` of this result), cut down to
    the selected clusters and their ancestors; heights are ``1 / lambda`` of each split.

    Raises:
        InBedderError: the model's clusters do not match the result's labels (an edited result).
    """
    tree = model.condensed_tree_
    selected = sorted(int(c) for c in tree._select_clusters())  # hdbscan labels = rank of the selected node
    labels, ids = _clusters(result)
    if len(selected) != len(ids) or not np.array_equal(ids, np.arange(len(selected))):
        raise InBedderError("the HDBSCAN tree does not match these clusters (they were edited); "
                            "use the centroid tree")
    raw = tree.to_numpy()
    rows = raw[raw["child_size"] > 1]
    parent_of = {int(r["child"]): int(r["parent"]) for r in rows}
    birth = {int(r["child"]): float(r["lambda_val"]) for r in rows}
    keep: set[int] = set()
    for node in selected:
        while node in parent_of:
            keep.add(node)
            node = parent_of[node]
        keep.add(node)
    children: dict[int, list[int]] = {}
    for node in keep:
        if node in parent_of:
            children.setdefault(parent_of[node], []).append(node)
    sizes = {int(c): int((labels == c).sum()) for c in ids}
    nodes: dict[int, TreeNode] = {}

    def build(node: int) -> int:
        """Add ``node`` (collapsing chains with one child) and return the id it is known by."""
        if node in selected:
            cluster = selected.index(node)
            nodes[node] = TreeNode(node, cluster=cluster, size=sizes[cluster])
            return node
        kids = [build(child) for child in sorted(children.get(node, []))]
        if len(kids) == 1:
            return kids[0]
        split = min(birth[child] for child in children[node])
        nodes[node] = TreeNode(node, kids, 1.0 / split if split > 0 else float("inf"),
                               size=sum(nodes[k].size for k in kids))
        return node

    root = min(keep - set(parent_of)) if keep - set(parent_of) else min(keep)
    return ClusterTree(nodes, build(root), "hdbscan")


def cut(tree: ClusterTree, n_groups: int) -> dict[int, int]:
    """Cluster id -> group id (the smallest cluster id in its group) for ``n_groups`` groups.

    Raises:
        InBedderError: ``n_groups`` outside 1..number of clusters.
    """
    n_leaves = len(tree.leaves())
    if not 1 <= int(n_groups) <= n_leaves:
        raise InBedderError(f"cannot cut {n_leaves} clusters into {n_groups} groups; pick 1 to {n_leaves}")
    groups = [tree.root]
    while len(groups) < n_groups:
        splittable = [g for g in groups if tree.nodes[g].children]
        latest = max(splittable, key=lambda g: tree.nodes[g].height)
        groups.remove(latest)
        groups.extend(tree.nodes[latest].children)
    out = {}
    for group in groups:
        leaves = tree.leaves(group)
        for leaf in leaves:
            out[leaf] = min(leaves)
    return out


def cut_labels(result: InstructionResult, tree: ClusterTree, n_groups: int) -> np.ndarray:
    """``int64 (n,)`` labels of ``result`` after cutting ``tree`` at ``n_groups`` (noise stays noise)."""
    mapping = cut(tree, n_groups)
    labels = np.asarray(result.labels, dtype=np.int64)
    return np.array([mapping.get(int(label), int(label)) for label in labels], dtype=np.int64)


def cut_merges(tree: ClusterTree, n_groups: int) -> list[list[int]]:
    """The merges (lists of cluster ids, two or more, the kept id first) a cut at ``n_groups`` makes."""
    groups: dict[int, list[int]] = {}
    for leaf, group in sorted(cut(tree, n_groups).items()):
        groups.setdefault(group, []).append(leaf)
    return [sorted(members) for members in groups.values() if len(members) > 1]


# --------------------------------------------------------------------------- merge suggestions


@dataclass
class MergeSuggestion:
    """Two clusters worth merging: close centroids and overlapping top answers."""

    a: int
    b: int
    name_a: str
    name_b: str
    distance: float
    overlap: float
    examples_a: list[str]
    examples_b: list[str]


def merge_suggestions(result: InstructionResult, vectors: np.ndarray, texts: Sequence[str] | None = None,
                      max_suggestions: int = 8, n_examples: int = 3) -> list[MergeSuggestion]:
    """Pairs of clusters whose centroids are close and whose top answers overlap, most similar first.

    A pair is suggested when its centroid distance is below the median distance between
    centroids and either the two share a top answer (Jaccard of the top-answer sets
    ``overlap`` > 0) or, when the model gives no answers, the two are each other's nearest
    cluster. Examples are top answers, else the first texts of each cluster.
    """
    ids, centroids = centroids_of(result, vectors)
    if len(ids) < 2:
        return []
    diff = centroids[:, None, :] - centroids[None, :, :]
    dist = np.sqrt((diff ** 2).sum(axis=2))
    upper = dist[np.triu_indices(len(ids), 1)]
    median = float(np.median(upper))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.argmin(axis=1)
    summary = {c.cluster_id: c for c in result.clusters}
    labels = np.asarray(result.labels)
    candidates = []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            if dist[i, j] > median:
                continue
            a, b = summary[int(ids[i])], summary[int(ids[j])]
            top_a, top_b = {x for x, _ in a.top_answers}, {x for x, _ in b.top_answers}
            overlap = len(top_a & top_b) / len(top_a | top_b) if top_a | top_b else 0.0
            mutual = nearest[i] == j and nearest[j] == i
            if overlap > 0 or (not (top_a | top_b) and mutual):
                examples = []
                for s in (a, b):
                    found = [x for x, _ in s.top_answers][:n_examples]
                    if not found and texts is not None:
                        found = [str(texts[k]) for k in np.flatnonzero(labels == s.cluster_id)[:n_examples]]
                    examples.append(found)
                candidates.append(MergeSuggestion(a.cluster_id, b.cluster_id, a.name, b.name, float(dist[i, j]),
                                                  overlap, examples[0], examples[1]))
    candidates.sort(key=lambda s: (-s.overlap + s.distance / (median or 1.0), s.a, s.b))
    return candidates[:max_suggestions]


# --------------------------------------------------------------------------- figure


def icicle_figure(tree: ClusterTree, names: dict[int, str], height: int = 420):
    """A plotly icicle of the tree: each leaf a cluster sized by documents, joins labelled by height."""
    import plotly.graph_objects as go

    parents = tree.parents()
    ids, labels, parent_ids, values = [], [], [], []
    for node in tree.nodes.values():
        ids.append(str(node.node))
        labels.append(plot_text(names.get(node.cluster, str(node.cluster)), 60) if node.cluster is not None
                      else f"{len(tree.leaves(node.node))} clusters")
        parent_ids.append(str(parents[node.node]) if node.node in parents else "")
        values.append(node.size)
    fig = go.Figure(go.Icicle(ids=ids, labels=labels, parents=parent_ids, values=values, branchvalues="total",
                              hovertemplate="%{label}<br>%{value} documents<extra></extra>"))
    fig.update_layout(margin={"t": 10, "l": 10, "r": 10, "b": 10}, height=height)
    return fig
