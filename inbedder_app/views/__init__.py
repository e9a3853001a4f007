"""The app's views, one module each, each exposing ``render(...)``: it draws with Streamlit and
calls ``inbedder_core`` for everything else. Result views (``explore``, ``compare``, ``export``)
take ``(ws, corpus, gold)`` and are listed in ``app.RESULT_VIEWS``; the page sections (``sidebar``,
``corpus``, ``ask``, ``saved_runs``) are called by ``app.main`` in page order.
"""

__all__ = ["ask", "compare", "corpus", "explore", "export", "saved_runs", "sidebar"]
