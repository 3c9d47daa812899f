"""The layout tells the flow: imports inside taskcraft_core only point down the stages, never up,
and the core never imports streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "taskcraft_core"
# Lowest first: a module may import its own stage and the ones before it.
STAGES = ["errors", "environment", "settings", "schema", "access", "store", "index", "workspace", "ingest", "models",
          "agent", "generate", "curate", "runs", "cli", "__main__"]


def stage_of(module: str) -> str:
    return module.removeprefix("taskcraft_core.").split(".")[0]


def imports_of(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += (
                [node.module] if node.module != "taskcraft_core" else [f"taskcraft_core.{a.name}" for a in node.names]
            )
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def core_modules() -> dict[str, Path]:
    return {".".join(path.relative_to(CORE.parent).with_suffix("").parts): path
            for path in CORE.rglob("*.py") if "migrations" not in path.parts}


def test_every_core_module_belongs_to_a_stage_and_says_what_it_is() -> None:
    for name, path in core_modules().items():
        if name == "taskcraft_core.__init__":
            continue
        assert stage_of(name) in STAGES, f"{name} is in no stage"
        if path.name != "__main__.py":
            assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{name} has no docstring"


def test_imports_only_point_down_the_stages() -> None:
    upward = []
    for name, path in core_modules().items():
        own = STAGES.index(stage_of(name)) if stage_of(name) in STAGES else len(STAGES)
        for imported in imports_of(path):
            if imported.startswith("taskcraft_core.") and STAGES.index(stage_of(imported)) > own:
                upward.append(f"{name} -> {imported}")
    assert upward == []


def test_the_core_never_imports_streamlit() -> None:
    offenders = [name for name, path in core_modules().items()
                 if any(i == "streamlit" or i.startswith("streamlit.") for i in imports_of(path))]
    assert offenders == []


def test_no_import_cycles_between_core_modules() -> None:
    modules = core_modules()
    graph = {name: {i for i in imports_of(path) if i in modules} for name, path in modules.items()}
    # Packages count as their __init__ modules.
    graph = {name: {i if i in graph else f"{i}.__init__" for i in deps} for name, deps in graph.items()}
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(node):], node]))
        if node in done:
            return
        for dep in graph.get(node, ()):
            visit(dep, [*trail, node])
        done.add(node)

    for name in graph:
        visit(name, [])


def test_no_page_writes_by_a_bare_expression_since_magic_is_off() -> None:
    """`.streamlit/config.toml` turns magic off (each new session recompiles the pages): a bare
    expression on a page would silently show nothing."""
    root = CORE.parent
    assert "magicEnabled = false" in (root / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    bare = []
    for path in [root / "app.py", *sorted((root / "app_pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = getattr(node, "value", None)
            docstring = isinstance(value, ast.Constant) and isinstance(value.value, str)
            if isinstance(node, ast.Expr) and not docstring and not isinstance(value, (ast.Call, ast.Await, ast.Yield)):
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []
