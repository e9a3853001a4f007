"""InBedder Explorer's library: cluster a text corpus by the answer to a question.

Stages, each a module, data flowing one way:
``corpus`` -> ``prompts`` -> ``encoder`` -> ``cache`` -> ``clustering`` -> ``labeling`` -> ``comparison``
-> ``export``; ``analysis`` runs them with memoisation, ``plots`` draws figures, ``runs`` saves runs,
``evaluation`` and ``training`` measure and make InBedders, ``cli`` is the ``inbedder`` command.
Below them all: ``errors``, ``results`` (result types), ``settings`` (read from the environment) and
``models`` (known checkpoints, the bundled InBedder). ``tests/test_architecture.py`` holds the layers.

Importing this package imports nothing heavy (no torch, transformers, umap or openai).
"""

__version__ = "0.1.0"
