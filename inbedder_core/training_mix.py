"""Kept so that ``from inbedder_core.training_mix import ...`` keeps working: a thin re-export of
``inbedder_core.train.mix`` (the bundled InBedder's training mix). New code imports from there.
"""

from .train.mix import *  # noqa: F403
from .train.mix import __all__  # noqa: F401
