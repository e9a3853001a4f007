"""Text for the screen: Markdown escaping (``md_text``), durations, the embedding progress line,
and core messages reworded from command-line hints to the app's controls (``column_hint``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from inbedder_app.config import LOCAL_MODEL

# --------------------------------------------------------------------------- small helpers

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md_text(text: Any) -> str:
    """``text`` with every Markdown (and Streamlit directive) character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EmbeddingProgress:
    """``progress(done, total)`` for ``Analysis.run``: a bar with documents done and time left."""

    def __init__(self, bar: Any, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.bar = bar
        self.label = label
        self.clock = clock
        self.start: float | None = None
        self.first_done = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.start is None:  # the first call reports what the cache already had
            self.start, self.first_done = now, done
        text = f"{self.label}: {done:,} / {total:,} documents embedded"
        encoded = done - self.first_done
        if 0 < encoded and done < total:
            text += f", about {duration((now - self.start) / encoded * (total - done))} left"
        elif self.first_done and encoded == 0 and done == total:
            text += " (all from the cache)"
        self.bar.progress(min(1.0, done / total) if total else 1.0, text=text)


_CLI_COLUMN_HINT = re.compile(r"(?:choose the column holding the texts with|pass) --text-column")


_CLI_WORDS = (  # (what a core message tells a command-line or Python user, what it means in the app)
    ("pass drop_duplicates=True (CLI: --drop-duplicates) to skip them", "tick 'Skip duplicate texts' to skip them"),
    ("(drop_duplicates is on)", "('Skip duplicate texts' is ticked)"),
    ("pass format= (--format on the command line) ", ""),
    ("or pass format= (--format) if it is not", "or save it with the right extension if it is not"),
    ("copy DIR here and pass --model DIR (or set INBEDDER_MODEL=DIR)",
     f"copy DIR here and choose '{LOCAL_MODEL}' as the Embedding model in the sidebar"),
    ("Offline now: --model ", "Offline now, in the sidebar: "),
    (" or --model ", " or "),
)


def column_hint(message: Any, hint: str = "choose another text column in the box above") -> str:
    """A core message in the app's words: the ``--text-column`` hint becomes ``hint``, other
    command-line and Python hints (``_CLI_WORDS``) become the app's controls."""
    text = _CLI_COLUMN_HINT.sub(hint, str(message))
    for cli, app in _CLI_WORDS:
        text = text.replace(cli, app)
    return text.replace("(--text-column)", "(the Text column box)")
