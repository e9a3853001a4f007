"""Kept so that ``from inbedder_core.training import ...`` keeps working: a thin re-export of
``inbedder_core.train`` (data, settings, features, loss, checkpoints, base, run, card). New code imports from there.
"""

from .errors import TrainingError  # noqa: F401  (importable from here before the split)
from .train import *  # noqa: F403
from .train import __all__  # noqa: F401
