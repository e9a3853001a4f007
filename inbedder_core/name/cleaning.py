"""Name cleaning and secret scrubbing: ``clean_label_text`` makes any model output a short plain
name (no Markdown, HTML, links, controls or formula starts); ``display_url`` scrubs an endpoint.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass



# --------------------------------------------------------------------------------------------
# Cleaning model output and scrubbing secrets
# --------------------------------------------------------------------------------------------

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"(?i)[a-z][a-z0-9+.\-]*://\S*|\b(?:javascript|vbscript|data|mailto|file):\S+|\bwww\.\S+")
_TAG = re.compile(r"<[^<>]*>")
_MD_MARK = re.compile(r"\*+|`+|~~+|(?<!\w)_+|_+(?!\w)")
_LINE_MARK = re.compile(r"(?m)^\s*(?:#{1,6}|>+)\s*")
_FORMULA_START = "=+-@"
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“", "`": "`"}
_SPACE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})  # control characters and line breaks become spaces
_DROP_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn"})  # invisible format, surrogate, private, unassigned


def _strip_controls(text: str) -> str:
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in _SPACE_CATEGORIES:
            out.append(" ")
        elif category not in _DROP_CATEGORIES:
            out.append(ch)
    return "".join(out)


def _cap(text: str, max_chars: int) -> str:
    """Cap ``text`` to ``max_chars``, cutting at a word boundary when one is near, with an ellipsis."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return text[:max_chars]
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if text[max_chars - 1] != " " and space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:/-") + "…"


_THINK_OPEN = re.compile(r"(?i)<think(?:ing)?>")
_THINK_CLOSE = re.compile(r"(?i)</think(?:ing)?>")


def strip_thinking(text: str) -> str:
    """``text`` without a reasoning model's ``<think>...</think>`` blocks, in linear time.

    A closing tag before any opening one ends reasoning whose opening tag was in the prompt (everything
    before it goes); an opening tag never closed is reasoning cut off (everything after it goes).

    >>> strip_thinking("<think>maybe {x}</think> card"), strip_thinking("hmm</think>cash"), strip_thinking("a<think>b")
    (' card', 'cash', 'a')
    """
    opening, closing = _THINK_OPEN.search(text), _THINK_CLOSE.search(text)
    pos = closing.end() if closing is not None and (opening is None or closing.start() < opening.start()) else 0
    kept = []
    while (opening := _THINK_OPEN.search(text, pos)) is not None:
        kept.append(text[pos:opening.start()])
        closing = _THINK_CLOSE.search(text, opening.end())
        if closing is None:
            return "".join(kept)
        pos = closing.end()
    kept.append(text[pos:])
    return "".join(kept)


def clean_label_text(text: str, max_chars: int) -> str:
    """Plain, safe, single-line text for a name or description; ``""`` when nothing is left.

    Removes HTML tags and entities, markdown markup (links keep their text), URLs and
    ``javascript:``-style schemes, control and format characters, surrounding quotes and leading
    ``= + - @`` (spreadsheet formula starters); collapses whitespace; caps to ``max_chars``. Only the first
    ``8 * max_chars + 1000`` characters are read (some patterns are quadratic on a long run of letters).
    """
    current = str(text)[: 8 * max(0, int(max_chars)) + 1000]
    for _ in range(8):  # removing one construct can expose another; repeat until stable
        previous = current
        current = html.unescape(current)
        current = _strip_controls(current)
        current = _MD_LINK.sub(r"\1", current)
        current = _TAG.sub(" ", current)
        current = _LINE_MARK.sub(" ", current)
        current = _MD_MARK.sub("", current)
        current = _URL.sub(" ", current)
        current = " ".join(current.split())
        current = _strip_edges(current)
        if current == previous:
            break
    return _strip_edges(_cap(current, max_chars))


def _strip_edges(text: str) -> str:
    previous = None
    while text != previous:
        previous = text
        text = text.strip().lstrip(_FORMULA_START)
        if len(text) >= 2 and _QUOTE_PAIRS.get(text[0]) == text[-1]:
            text = text[1:-1]
        elif text[:1] in _QUOTE_PAIRS and text.count(text[0]) == 1:
            text = text[1:]  # a lone opening quote
        elif text[-1:] in _QUOTE_PAIRS.values() and text.count(text[-1]) == 1:
            text = text[:-1]  # a lone closing quote
    return text


_GENERIC_SECRET = re.compile(
    r"(?i)\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{6,}"  # OpenAI-style keys
    r"|\b(?:bearer|basic)\s+[A-Za-z0-9+/=_\-.~]+"  # Authorization header values
    r"|(?<=[?&;])(?:api[_-]?key|key|token|access[_-]?token|secret|password|sig|signature)=[^&#\s\"']+"
)
_URL_USERINFO = re.compile(r"(//)[^/@\s]+@")


def display_url(url: str) -> str:
    """``url`` without user name, password, query string or fragment: safe to show to anyone.

    A URL that cannot be parsed, or has no ``scheme://host`` part, is not shown at all.
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(the configured endpoint)"
    if not parts.scheme or not host:
        return "(the configured endpoint)"
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _mask(match: re.Match[str]) -> str:
    """``key=***`` keeps the parameter name; a key or a header value becomes ``***``."""
    found = match.group(0)
    return found.split("=", 1)[0] + "=***" if "=" in found and not found.lower().startswith(("bearer", "basic")) \
        else "***"


def url_userinfo_problem(url: str | None, where: str) -> str:
    """A message when ``url`` carries a user name or password (``user:pass@host``), else ``""``.

    Credentials there would replace the Bearer key and be echoed in errors, so they are refused.
    """
    from urllib.parse import urlsplit

    if not url:
        return ""
    try:
        has_userinfo = urlsplit(url.strip()).username is not None or "@" in urlsplit(url.strip()).netloc
    except ValueError:
        return ""
    if not has_userinfo:
        return ""
    return (f"{where} ({display_url(url)}) holds a user name or password before '@'; remove them from the URL "
            "and give the key as the API key (OPENAI_API_KEY), which is sent as a Bearer header")


def _scrubber(api_key: str | None) -> Callable[[str], str]:
    secret = api_key.strip() if isinstance(api_key, str) else ""

    def scrub(text: str) -> str:
        text = str(text)
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        text = _GENERIC_SECRET.sub(_mask, text)
        return _URL_USERINFO.sub(r"\1***@", text)

    return scrub
