"""InBedder Explorer's library: cluster a text corpus by the answer to a question.

Stages, data flowing one way (docs/architecture.md has the map and the import rules):
``io`` (files -> ``Corpus``) -> ``prompts`` -> ``encoder`` -> ``cache`` -> ``cluster`` (reduce, cluster)
-> ``name`` (cluster names) -> ``comparison`` -> ``export``; ``analysis`` runs them with memoisation,
``plots`` draws figures, ``presentation`` gives the tables and download bytes, ``runs`` saves runs,
``eval`` and ``train`` measure and make InBedders, ``cli`` is the ``inbedder`` command. Below them
all: ``errors``, ``results`` (result types), ``settings`` (read from the environment) and ``models``
(known checkpoints, the bundled InBedder). ``clustering``, ``labeling``, ``corpus``, ``evaluation``,
``training`` and ``training_mix`` are re-export shims kept for existing imports. ``tests/test_architecture.py``
holds the layers.

Importing this package imports nothing heavy (no torch, transformers, umap or openai).
"""

__version__ = "0.1.0"

__all__ = [
    "analysis", "cache", "cli", "cluster", "comparison", "embedding_io", "encoder", "errors", "eval", "export",
    "io", "models", "name", "plots", "presentation", "prompts", "results", "runs", "settings", "train",
    "clustering", "corpus", "evaluation", "labeling", "training", "training_mix",
]
