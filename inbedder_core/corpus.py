"""Kept so that ``from inbedder_core.corpus import ...`` keeps working: a thin re-export of the corpus
side of ``inbedder_core.io`` (the ``Corpus`` type, readers, ``load_corpus``). New code imports from there.
"""

from .io import *  # noqa: F403
from .io import __all__  # noqa: F401
