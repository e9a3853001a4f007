"""InBedder Explorer's Streamlit side: what ``app.py`` composes. With ``app.py``, the only code that
imports ``streamlit``; it may import ``inbedder_core``, never the reverse (tests/test_architecture.py).

``config`` (settings read once per run) <- ``text`` (screen wording), ``state`` (session state,
widget helpers), ``resources`` (shared across sessions) <- ``answering`` (the llm:NAME engine of a
session) <- ``running`` (a run with its progress) <- ``views`` (one module per view, each with a ``render``).
"""

__all__ = ["answering", "config", "resources", "running", "state", "text", "views"]
