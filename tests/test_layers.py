"""The package reads as the pipeline and its imports go one way.

    apps → pipeline → options → profile → render → motion → speech → media → core → errors
                                          render → face → media

Every `import` in lipdub/ is read, those inside functions included: a stage may import only the stages below it,
`face` and `motion` never import each other, nothing in lipdub/ imports `training` or the package root, no module
imports lipdub inside a function (the import lines at the top say what a file depends on; only optional heavy
third-party packages such as gradio or ray are imported where they are used), and no two modules import each other
even through others. Modules stay under MAX_LINES lines.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lipdub"

# What each top-level part of lipdub may import (besides itself). The order of the pipeline, bottom-up.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "media": {"core", "errors"},
    "speech": {"media", "core", "errors"},
    "face": {"media", "core", "errors"},
    "motion": {"speech", "media", "core", "errors"},
    "render": {"face", "motion", "speech", "media", "core", "errors"},
    "profile": {"render", "face", "motion", "speech", "media", "core", "errors"},
    "options": {"profile", "render", "face", "motion", "speech", "media", "core", "errors"},
    "pipeline": {"options", "profile", "render", "face", "motion", "speech", "media", "core", "errors"},
    "apps": {"pipeline", "options", "profile", "render", "face", "motion", "speech", "media", "core", "errors"},
}
ROOT_MODULES = {"lipdub", "lipdub.__main__"}  # the public façade may import any part; no part imports it

MAX_LINES = 500
# At most two named exceptions, each with its reason.
LONG_MODULES: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The lipdub module an import of `name` loads (its longest existing prefix), or None outside lipdub."""
    if name != "lipdub" and not name.startswith("lipdub."):
        return None
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported lipdub module or 'training…', line, inside a function) for every import in `path`."""
    me = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            local = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = me.split(".")
                    if path.name != "__init__.py":
                        base = base[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                names = [f"{target}.{a.name}" for a in child.names] if target else []
                names = [n if _resolve(n, modules) != "lipdub" or n.rsplit(".", 1)[0] != "lipdub"
                         or n in modules else target for n in names]
            for n in names:
                if n == "training" or n.startswith("training."):
                    found.append((n, child.lineno, in_function))
                    continue
                resolved = _resolve(n, modules)
                if resolved is not None and resolved != me:
                    found.append((resolved, child.lineno, in_function))
            visit(child, local)

    visit(tree, False)
    return found


def _part(module: str) -> str:
    """The top-level part of lipdub a module belongs to ('media', 'apps', …), or the module itself for the root."""
    return module if module in ROOT_MODULES else module.split(".")[1]


def test_every_part_of_the_package_is_in_the_layer_table():
    parts = {_part(m) for m in _modules()} - ROOT_MODULES - {"assets"}
    assert parts <= set(ALLOWED), f"parts of lipdub missing from ALLOWED: {sorted(parts - set(ALLOWED))}"


def test_imports_go_one_way():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        for target, line, in_function in _imports(path, modules):
            where = f"{path.relative_to(ROOT)}:{line}"
            if target.startswith("training"):
                wrong.append(f"{where} imports {target}: the product never imports the training package")
            elif target in ROOT_MODULES:
                wrong.append(f"{where} imports the package root {target}: import the stage itself")
            elif in_function:
                wrong.append(f"{where} imports {target} inside a function: import it at the top of the file")
            elif module not in ROOT_MODULES and _part(target) != _part(module) \
                    and _part(target) not in ALLOWED[_part(module)]:
                wrong.append(f"{where}: {_part(module)} may not import {_part(target)} ({target})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    modules = _modules()
    graph = {m: sorted({t for t, _, _ in _imports(p, modules) if t in modules}) for m, p in modules.items()}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            connect(v)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_modules_stay_small():
    assert len(LONG_MODULES) <= 2
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    unexplained = {m: n for m, n in long.items() if m not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines: {unexplained}"


def test_the_checker_sees_what_it_must_refuse(tmp_path, monkeypatch):
    # a throwaway package: an upward import inside a function, and a cycle
    pkg = tmp_path / "lipdub"
    for rel, text in {"__init__.py": "", "media/__init__.py": "", "errors.py": "",
                      "media/a.py": "def f():\n    from lipdub.apps import cli\n",
                      "media/b.py": "from lipdub.media import c\n", "media/c.py": "from lipdub.media import b\n",
                      "apps/__init__.py": "", "apps/cli.py": "from lipdub import media\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "ROOT", tmp_path)
    monkeypatch.setattr(here, "PACKAGE", pkg)
    modules = _modules()
    assert ("lipdub.apps.cli", 2, True) in _imports(pkg / "media/a.py", modules)
    for check in (test_imports_go_one_way, test_no_import_cycles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} passed on a package that breaks it")
