"""Kept so that ``from inbedder_core.evaluation import ...`` keeps working: a thin re-export of
``inbedder_core.eval`` (metrics, tasks, published, runner, report). New code imports from there.
"""

from .eval import *  # noqa: F403
from .eval import __all__  # noqa: F401
