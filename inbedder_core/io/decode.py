"""Bytes to text for corpus files: size caps, binary-file detection, byte-order marks, declared or
detected encodings, and messages that point at the bad byte.
"""

from __future__ import annotations

import codecs
import re

from inbedder_core.errors import CorpusError

from .corpus import MAX_BYTES_ENV

# Magic numbers of common binary files someone may upload by mistake.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx or .docx file is one too)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.xls/.doc)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_CONTROL_BYTES = bytes([*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_CP1252_UNDEFINED = bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D])
_C1_BYTES = bytes(range(0x80, 0xA0))
_HIGH_BYTES = bytes(range(0x80, 0x100))
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_ASCII_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DECODED_NON_ASCII = re.compile("[^\x00-\x7f\ufffd]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _format_size(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):,.1f} MiB ({n_bytes:,} bytes)"
    return f"{n_bytes:,} bytes"


def _check_size(n_bytes: int, cap: int, display: str) -> None:
    """Raises: CorpusError: the file is larger than ``cap`` bytes."""
    if n_bytes > cap:
        raise CorpusError(
            f"{display!r} is {_format_size(n_bytes)}, over the size cap of {_format_size(cap)}; "
            f"raise the cap with max_bytes= (CLI: --max-bytes, or the {MAX_BYTES_ENV} environment variable)"
        )


# --- decoding -------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str | None, display: str) -> tuple[str, str, str]:
    """Decode a text file: ``(text without BOM, encoding used, note for the report)``.

    Raises:
        CorpusError: the file is binary, or cannot be decoded (with the declared
            encoding, or with none detected confidently), or holds only a BOM.
    """
    _check_magic(data, display)
    if encoding is not None:
        text, note = _decode_declared(data, encoding, display)
        used = encoding
    else:
        text, used, note = _decode_detected(data, display)
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\x00")
    if nul >= 0:
        raise CorpusError(
            f"{display!r} looks binary, not text: it contains a NUL character "
            f"(line {text.count(chr(10), 0, nul) + 1}); choose a text file, or export the data as CSV"
        )
    if not text:
        raise CorpusError(f"{display!r} is empty: it holds only a byte-order mark")
    return text, used, note


def _decode_declared(data: bytes, encoding: str, display: str) -> tuple[str, str]:
    known = "pass a Python codec name such as 'utf-8', 'utf-16', 'cp1252' or 'latin-1'"
    try:
        codec = codecs.lookup(encoding)
    except (LookupError, ValueError):  # ValueError: a name with a NUL character
        raise CorpusError(f"unknown encoding {encoding!r}; {known}") from None
    try:
        text = data.decode(codec.name)
    except LookupError:  # a bytes-to-bytes codec such as 'base64', 'zlib' or 'rot13'
        raise CorpusError(f"{encoding!r} is not a text encoding; {known}") from None
    except UnicodeError as err:  # UnicodeDecodeError, or a codec's own UnicodeError ('punycode', 'undefined')
        where = _describe_bad_byte(data, err) if isinstance(err, UnicodeDecodeError) else str(err)
        raise CorpusError(
            f"{display!r} cannot be decoded as {encoding}: {where}; "
            "pass the file's real encoding with encoding= (CLI: --encoding)"
        ) from None
    surrogate = _SURROGATE.search(text)
    if surrogate:  # 'utf-7' or 'unicode_escape' can give half of a UTF-16 pair, which is no character
        raise CorpusError(
            f"{display!r} decoded as {encoding} holds U+{ord(surrogate.group()):04X} (line "
            f"{text.count(chr(10), 0, surrogate.start()) + 1}), half of a UTF-16 surrogate pair and not a "
            "character; pass the file's real encoding with encoding= (CLI: --encoding)"
        )
    return text, f"encoding: {encoding} (as declared)"


def _decode_detected(data: bytes, display: str) -> tuple[str, str, str]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as err:
                raise CorpusError(
                    f"{display!r} starts with a {codec} byte-order mark but is not valid {codec}: "
                    f"{_describe_bad_byte(data, err)}; pass the real encoding with encoding= (CLI: --encoding)"
                ) from None
            if codec == "utf-8-sig":
                return text, codec, "encoding: utf-8 (byte-order mark removed)"
            return text, codec, f"encoding: {codec} (from its byte-order mark)"

    nul = data.find(b"\x00")
    if nul >= 0:
        detected = _detect_bomless_utf16(data)
        if detected is not None:
            utf16, decoded = detected
            return (
                decoded,
                utf16,
                f"encoding: {utf16} (no byte-order mark; detected from the pattern of NUL bytes)",
            )
        raise CorpusError(
            f"{display!r} looks binary, not text: it contains NUL bytes (first at byte {nul:,}) and does not "
            "read as UTF-16 of mostly Latin letters; if it is UTF-16 text without a byte-order mark (in "
            "Chinese or Russian, say), pass encoding='utf-16-le' or 'utf-16-be' (CLI: --encoding), else choose a "
            "text file, or export the data as CSV"
        )

    try:
        return data.decode("utf-8"), "utf-8", "encoding: utf-8"
    except UnicodeDecodeError as err:
        utf8_error = err

    single_byte = _detect_single_byte(data)
    if single_byte is not None:
        return (
            data.decode(single_byte),
            single_byte,
            f"encoding: {single_byte} (the file is not valid UTF-8; detected from its bytes as Western "
            "single-byte text); pass encoding= (CLI: --encoding) if accented letters look wrong",
        )
    raise CorpusError(
        f"{display!r} is not valid UTF-8 ({_describe_bad_byte(data, utf8_error)}) and its encoding could "
        "not be detected with confidence; pass the file's encoding with encoding= (CLI: --encoding), "
        "e.g. 'cp1252', 'latin-1' or 'utf-16', or re-save the file as UTF-8"
    )


def _describe_bad_byte(data: bytes, err: UnicodeDecodeError) -> str:
    start = err.start
    line = data.count(b"\n", 0, start) + 1
    return f"invalid byte 0x{data[start]:02X} at byte {start:,} (line {line})"


def _check_magic(data: bytes, display: str) -> None:
    """Raises: CorpusError: ``data`` starts like a known binary file format."""
    if data.startswith(b"PAR1"):
        raise CorpusError(f"{display!r} is a Parquet file, not text; rename it to .parquet or pass format='parquet'")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise CorpusError(
                f"{display!r} looks binary, not text: it starts like {what}; export the data as "
                f"CSV, TSV, TXT, JSONL or Parquet"
            )


def _detect_bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """``("utf-16-le" or "utf-16-be", decoded text)`` when NUL bytes sit on one parity only, as
    in mostly-ASCII UTF-16 text, and the whole file decodes to printable text; else ``None``."""
    if len(data) % 2:
        return None
    sample = data[: 1 << 16]
    pairs = len(sample) // 2
    nul_even = sample[0::2].count(0)
    nul_odd = sample[1::2].count(0)
    if max(nul_even, nul_odd) < 0.2 * pairs or min(nul_even, nul_odd) > 0.05 * max(nul_even, nul_odd):
        return None
    codec = "utf-16-le" if nul_odd > nul_even else "utf-16-be"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    head = text[:20_000]
    printable = sum(ch.isprintable() or ch in "\t\n\r" for ch in head)
    if "\x00" in text or printable < 0.98 * len(head):
        return None
    return codec, text


def _detect_single_byte(data: bytes) -> str | None:
    """``"cp1252"`` or ``"latin-1"`` when invalid-UTF-8 ``data`` reads as Western
    single-byte text with confidence, else ``None``.

    Confident means: no control bytes; no byte undefined in cp1252; no valid UTF-8
    multi-byte sequences (a mostly-UTF-8 file with a few bad bytes is not guessed);
    high bytes are at most half the file, come in short runs (accented letters,
    not whole words as in Cyrillic or CJK encodings) and mostly touch ASCII letters.
    """
    if data.translate(None, _CONTROL_BYTES) != data or data.translate(None, _CP1252_UNDEFINED) != data:
        return None
    n_high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if n_high == 0 or n_high > 0.5 * len(data):
        return None
    as_utf8 = data.decode("utf-8", errors="replace")
    if _DECODED_NON_ASCII.search(as_utf8):
        return None
    sample = data[: 1 << 20]
    runs = [m.span() for m in _HIGH_RUN.finditer(sample)]
    short = sum(end - start <= 2 for start, end in runs)
    touching = sum(
        (start > 0 and sample[start - 1] in _ASCII_LETTERS) or (end < len(sample) and sample[end] in _ASCII_LETTERS)
        for start, end in runs
    )
    if short < 0.9 * len(runs) or touching < 0.5 * len(runs):
        return None
    return "cp1252" if data.translate(None, _C1_BYTES) != data else "latin-1"
