"""The packages other layers use expose what their ``__init__`` lists, and nothing reaches past it.

Like httpx: implementation modules are private (``_name.py``), the package's ``__all__`` is its API, and
code in other layers (the pipeline, bench, the harness) imports only from the package. Tests may import a
private module to unit-test it.
"""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genesys", "transforms", "loaders", "extractors")
CONSUMERS = [ROOT / "wfm_pipeline", ROOT / "bench", ROOT / "harness"]


@pytest.mark.parametrize("name", PACKAGES)
def test_implementation_modules_are_private(name: str) -> None:
    folder = ROOT / "wfm_pipeline" / name
    public = [path.name for path in folder.glob("*.py") if not path.name.startswith("_")]
    assert public == [], f"wfm_pipeline/{name}: modules other than __init__ must be private: {public}"


@pytest.mark.parametrize("name", PACKAGES)
def test_the_public_surface_is_what_init_lists(name: str) -> None:
    package = importlib.import_module(f"wfm_pipeline.{name}")
    exported = set(package.__all__)
    assert len(exported) == len(package.__all__), "a name is listed twice"
    assert all(hasattr(package, symbol) for symbol in exported), "a listed name is not defined"
    defined = {
        symbol
        for symbol, value in vars(package).items()
        if not symbol.startswith("_") and not isinstance(value, types.ModuleType) and symbol != "annotations"
    }
    assert defined == exported, f"wfm_pipeline.{name} defines but does not list: {sorted(defined - exported)}"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        for module in modules:
            parts = module.split(".")
            if len(parts) > 2 and parts[0] == "wfm_pipeline" and parts[1] in PACKAGES and parts[2][0] == "_":
                found.append(module)
    return found


def test_other_layers_import_only_the_packages_public_names() -> None:
    offenders = []
    for base in CONSUMERS:
        for path in sorted(base.rglob("*.py")):
            own = [name for name in PACKAGES if (ROOT / "wfm_pipeline" / name) in path.parents]
            for module in _private_imports(path):
                if not own or module.split(".")[1] != own[0]:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, offenders
