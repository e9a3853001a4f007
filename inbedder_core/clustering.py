"""Kept so that ``from inbedder_core.clustering import ...`` keeps working: a thin re-export of
``inbedder_core.cluster`` (reducers, clusterers, session, runtime). New code imports from there.
"""

from .cluster import *  # noqa: F403
from .cluster import __all__  # noqa: F401
