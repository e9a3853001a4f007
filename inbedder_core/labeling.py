"""Kept so that ``from inbedder_core.labeling import ...`` keeps working: a thin re-export of
``inbedder_core.name`` (keywords, llm, cleaning, client). New code imports from there.
"""

from .name import *  # noqa: F403
from .name import __all__  # noqa: F401
