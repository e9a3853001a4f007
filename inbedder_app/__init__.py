"""InBedder Explorer's Streamlit side: what ``app.py`` composes. With ``app.py``, the only code that
imports ``streamlit``; it may import ``inbedder_core``, never the reverse (tests/test_architecture.py).

``config`` (settings read once per run) <- ``text`` (screen wording), ``state`` (session state,
widget helpers), ``resources`` (shared across sessions) <- ``running`` (a run with its progress)
<- ``views`` (one module per view, each with a ``render``).
"""

__all__ = ["config", "resources", "running", "state", "text", "views"]
