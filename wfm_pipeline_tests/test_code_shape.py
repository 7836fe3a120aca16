"""The shape rules of the code base (DESIGN.md, "Shape of the code"), checked so they stay true."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wfm_pipeline"
MAX_FUNCTION_LINES = 60
# A function allowed to be longer, with the reason (none today).
LONGER_ON_PURPOSE: dict[str, str] = {}


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
    ]


def test_no_function_is_longer_than_sixty_lines() -> None:
    too_long = [
        f"{where} ({lines} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for where, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES and where.split(" ")[-1] not in LONGER_ON_PURPOSE
    ]
    assert not too_long, "split these along a real seam: " + "; ".join(too_long)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from wfm_pipeline import wire`` imports the module wfm_pipeline.wire
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


# What each layer may import from the project (and whether Dagster): the sandbox shares nothing with the
# client but wire constants, so one cannot hide the other's bugs; the client has no Dagster import.
LAYERS = {
    "sandbox": ("wfm_pipeline.sandbox", "wfm_pipeline.wire"),
    "genesys": (
        "wfm_pipeline.genesys",
        "wfm_pipeline.wire",
        "wfm_pipeline.timestamps",
        "wfm_pipeline.fileio",
    ),
}


def test_the_client_and_the_sandbox_import_only_what_their_layer_allows() -> None:
    for folder, allowed in LAYERS.items():
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            for name in _imports(path):
                ours = name == "wfm_pipeline" or name.startswith("wfm_pipeline.")
                where = path.relative_to(PACKAGE.parent)
                assert not (ours and not name.startswith(allowed)), f"{where} imports {name}"
                assert not name.startswith("dagster"), f"{where} imports {name}"
