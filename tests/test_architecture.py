"""Import boundaries (STYLE.md): the app stays thin, the core never imports Streamlit.

- ``app.py`` never imports ``torch``, ``transformers``, ``sentence_transformers``,
  ``umap``, ``hdbscan`` or ``openai``: heavy work goes through ``inbedder_core``.
- No ``inbedder_core`` module imports ``streamlit``, at any level (inside functions too).
- Importing the core (every module) or the app module loads none of the heavy libraries:
  they are imported when a model is loaded or a stage runs, not at import time.
- ``app.py`` never hands raw HTML to Streamlit (``unsafe_allow_html``, ``st.html``,
  ``components.html``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
CORE = ROOT / "inbedder_core"
HEAVY = ("torch", "transformers", "sentence_transformers", "umap", "hdbscan", "openai")


def imported_roots(path: Path) -> dict[str, int]:
    """Top-level package of every absolute import anywhere in the file -> first line number."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def core_modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


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
