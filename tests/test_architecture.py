"""The import graph of ``dbench/`` runs one way: every module imports only from its own layer or lower.

The layers (lowest first) are the ones of issue 10's target layout; see LAYERS below. Every import
counts: at module level and inside functions (lazy), ``import x`` and ``from x import y``, relative
imports, ``importlib.import_module("literal")``, and string constants naming a dbench module (the
registries that ``importlib`` resolves by name). The static analysis reads source only (``ast``), so a
module that is expensive or impossible to import is still checked.

Every import of a ``dbench`` name must also resolve: the module exists (``import dbench.x.y``,
``importlib.import_module("dbench.x.y")``) and a name taken ``from`` a module is a submodule or is bound
at its top level (a module with a ``__getattr__`` or a star import may provide any name). A lazy import
of a module that was moved or removed would otherwise fail only when its function first runs.

Two exceptions, both structural:

- ``dbench/__init__.py`` is the facade users import: it may re-export from any layer, but only lazily
  (inside functions) and nothing in ``dbench`` may import it back (``import dbench``,
  ``from dbench import name-that-is-not-a-module``), so it can never close a cycle.
- The implicit import of a package's ``__init__`` when one of its submodules is imported is not an
  edge (it is how Python works, not a dependency a reader has to follow).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layer number -> module-name prefixes (a prefix matches the module itself and everything below it).
LAYERS: dict[int, tuple[str, ...]] = {
    0: ("dbench.errors", "dbench._array", "dbench._counter", "dbench._json", "dbench._version",
        "dbench.choices", "dbench.backend", "dbench._progress"),
    1: ("dbench.datasets",),
    2: ("dbench.encoders",),
    3: ("dbench.codes",),
    4: ("dbench.estimators",),
    5: ("dbench.metrics", "dbench.probes", "dbench.plots"),
    6: ("dbench.protocols",),
    7: ("dbench.evaluation",),
    8: ("dbench.results",),
    9: ("dbench.leaderboard", "dbench.submissions", "dbench.studies"),
    10: ("dbench._cli", "dbench.__main__"),
}
LAYER_NAMES = {
    0: "foundation", 1: "datasets", 2: "encoders", 3: "codes", 4: "estimators", 5: "metrics/probes/plots",
    6: "protocols", 7: "evaluation", 8: "results", 9: "leaderboard/submissions/studies", 10: "cli",
}
FACADE = "dbench"
FORBIDDEN_PACKAGES = ("reference_models",)


@dataclass(frozen=True)
class Import:
    """One import found in the source: who imports what, where, and how."""

    source: str  # importing module
    target: str  # imported module (resolved to the most specific module that exists)
    path: Path
    line: int
    lazy: bool  # inside a function, a class body or ``if TYPE_CHECKING:``, not run at module import
    how: str  # "import", "from", "import_module" or "name" (a string naming a module)


# ------------------------------------------------------------------------------------------------
# Reading the source


def module_files(package_dir: Path) -> dict[str, Path]:
    """Module name -> file for every ``.py`` file of the package rooted at ``package_dir``."""
    base = package_dir.parent
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _existing(name: str, modules: dict[str, Path], roots: tuple[str, ...]) -> str | None:
    """``name`` or its longest prefix that is a module we know; None for other packages."""
    if name.split(".")[0] not in roots:
        return None
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return name.split(".")[0]


def _relative_base(module: str, level: int, modules: dict[str, Path]) -> str:
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, modules: dict[str, Path], roots: tuple[str, ...]) -> None:
        self.module, self.path, self.modules, self.roots = module, path, modules, roots
        self.depth = 0  # > 0 inside a function or class body
        self.found: list[Import] = []
        self.outside: list[tuple[str, int]] = []  # (module, line) of imports of other top-level packages
        self.unresolved: list[tuple[int, str]] = []  # (line, what) of imports of names that do not exist

    def _require(self, module: str, node: ast.AST, name: str | None = None) -> None:
        """Note an import of ``module`` (or of ``name`` from it) that cannot succeed."""
        if module.split(".")[0] not in self.roots:
            return
        if module not in self.modules:
            self.unresolved.append((node.lineno, f"no module {module}"))
        elif name is not None and f"{module}.{name}" not in self.modules \
                and not _may_provide(self.modules[module], name):
            self.unresolved.append((node.lineno, f"{module} has no {name!r} (neither a submodule nor a name it defines)"))

    def _add(self, name: str, node: ast.AST, how: str) -> None:
        self.outside.append((name, node.lineno))
        target = _existing(name, self.modules, self.roots)
        if target is not None and target != self.module:
            self.found.append(Import(self.module, target, self.path, node.lineno, self.depth > 0, how))

    def _scoped(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _scoped

    def visit_If(self, node: ast.If) -> None:
        # Imports under ``if TYPE_CHECKING:`` never run: like lazy ones, they count for the layers
        # but not for what ``import`` costs.
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            self._scoped(node)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node, "import")
            self._require(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = _relative_base(self.module, node.level, self.modules)
            package = f"{base}.{node.module}" if node.module else base
        else:
            package = node.module or ""
        for alias in node.names:
            submodule = f"{package}.{alias.name}"
            self._add(submodule if submodule in self.modules else package, node, "from")
            self._require(package, node, None if alias.name == "*" else alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                target = arg.value
                if target.startswith("."):
                    level = len(target) - len(target.lstrip("."))
                    rest = target.lstrip(".")
                    base = _relative_base(self.module, level, self.modules)
                    target = f"{base}.{rest}" if rest else base
                self._add(target, node, "import_module")
                self._require(target, node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # A registry of module names resolved later with importlib ("dbench.metrics._mig").
        value = node.value
        if isinstance(value, str) and value in self.modules and "." in value:
            self._add(value, node, "name")


_TOP_LEVEL_NAMES: dict[Path, tuple[set[str], bool]] = {}


def _top_level_names(path: Path) -> tuple[set[str], bool]:
    """Names bound at the top level of a module file (also under ``if``/``try``/``for``/``with``), and
    whether it may provide any other name (a module ``__getattr__`` or a star import)."""
    if path not in _TOP_LEVEL_NAMES:
        names: set[str] = set()
        open_ended = False
        stack: list[ast.AST] = list(ast.parse(path.read_text(encoding="utf-8")).body)
        while stack:
            node = stack.pop()
            targets: list[ast.AST | None] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                open_ended |= node.name == "__getattr__"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    open_ended |= alias.name == "*"
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
                targets = [node.target]
            elif isinstance(node, ast.With):
                targets = [item.optional_vars for item in node.items]
            for target in targets:
                if target is not None:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            for field in ("body", "orelse", "finalbody", "handlers"):  # blocks that run at import
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    stack.extend(getattr(node, field, []))
        _TOP_LEVEL_NAMES[path] = (names, open_ended)
    return _TOP_LEVEL_NAMES[path]


def _may_provide(path: Path, name: str) -> bool:
    names, open_ended = _top_level_names(path)
    return open_ended or name in names


def collect_imports(
    package_dir: Path, roots: tuple[str, ...] | None = None
) -> tuple[list[Import], list[tuple[str, Path, int, str]]]:
    """Every import between modules of ``roots`` (default: the package itself) and of other packages.

    Returns the internal imports and ``(importing module, file, line, imported name)`` for imports of
    anything else (standard library, third party, other first-party packages).
    """
    internal, outside, _ = _scan(package_dir, roots)
    return internal, outside


def unresolved_imports(package_dir: Path, roots: tuple[str, ...] | None = None,
                       imported: tuple[Path, ...] = ()) -> list[str]:
    """One line per import of a module of ``roots`` that does not exist, or of a name it does not define.

    ``imported``: other packages the modules of ``package_dir`` import from (their imports are checked
    too when they are in ``roots``).
    """
    return _scan(package_dir, roots, imported)[2]


def _scan(
    package_dir: Path, roots: tuple[str, ...] | None, imported: tuple[Path, ...] = ()
) -> tuple[list[Import], list[tuple[str, Path, int, str]], list[str]]:
    modules = module_files(package_dir)
    known = dict(modules)
    for other in imported:
        known.update(module_files(other))
    roots = roots or (package_dir.name,)
    internal: list[Import] = []
    outside: list[tuple[str, Path, int, str]] = []
    unresolved: list[str] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(module, path, known, roots)
        collector.visit(tree)
        internal.extend(collector.found)
        outside.extend((module, path, line, name) for name, line in collector.outside)
        unresolved.extend(f"{_shown(path)}:{line}: {module} imports {what}" for line, what in collector.unresolved)
    return internal, outside, unresolved


# ------------------------------------------------------------------------------------------------
# Checking the graph


def layer_of(module: str, layers: dict[int, tuple[str, ...]] = LAYERS) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer): the most specific prefix wins
    for layer, prefixes in layers.items():
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def layer_violations(imports: list[Import], layers: dict[int, tuple[str, ...]] = LAYERS,
                     facade: str = FACADE) -> list[str]:
    """One line per import that points up the layers, or that breaks the facade's rules."""
    problems = []
    for imp in imports:
        where = f"{_shown(imp.path)}:{imp.line}"
        if imp.target == facade:
            problems.append(f"{where}: {imp.source} imports the facade package {facade} itself; import the "
                            "module that defines the name instead")
            continue
        if imp.source == facade:
            if not imp.lazy and layer_of(imp.target, layers) != 0:
                problems.append(f"{where}: {facade}/__init__ imports {imp.target} at module level; the facade "
                                "re-exports lazily (inside a function) so `import dbench` stays cheap")
            continue
        src, dst = layer_of(imp.source, layers), layer_of(imp.target, layers)
        if src is not None and dst is not None and dst > src:
            kind = "lazy " if imp.lazy else ""
            problems.append(
                f"{where}: {imp.source} (layer {src} {LAYER_NAMES.get(src, '')}) has a {kind}{imp.how} of "
                f"{imp.target} (layer {dst} {LAYER_NAMES.get(dst, '')}), which is above it"
            )
    return problems


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(components)


def describe_cycle(component: list[str], imports: list[Import]) -> str:
    """The component and, for each of its internal edges, where the import is written."""
    members = set(component)
    edges = sorted({(i.source, i.target, f"{_shown(i.path)}:{i.line}") for i in imports
                    if i.source in members and i.target in members})
    return "cycle between " + ", ".join(component) + ": " + "; ".join(f"{s} -> {t} ({w})" for s, t, w in edges)


# ------------------------------------------------------------------------------------------------
# The tests on dbench itself

DBENCH = ROOT / "dbench"


@pytest.fixture(scope="module")
def dbench_imports():
    return collect_imports(DBENCH)


def test_every_module_has_a_layer():
    unplaced = [m for m in module_files(DBENCH) if m != FACADE and layer_of(m) is None]
    assert not unplaced, f"modules with no layer (add them to LAYERS in {Path(__file__).name}): {unplaced}"


def test_imports_follow_the_layers(dbench_imports):
    internal, _ = dbench_imports
    problems = layer_violations(internal)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_no_import_cycles(dbench_imports):
    internal, _ = dbench_imports
    cycles = import_cycles(internal)
    assert not cycles, "import cycles:\n" + "\n".join(describe_cycle(c, internal) for c in cycles)


def test_dbench_never_imports_reference_models(dbench_imports):
    _, outside = dbench_imports
    bad = [f"{_shown(path)}:{line}: {module} imports {name}" for module, path, line, name in outside
           if name.split(".")[0] in FORBIDDEN_PACKAGES]
    # Also string constants naming it (a registry resolved with importlib).
    for module, path in module_files(DBENCH).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.split(".")[0] in FORBIDDEN_PACKAGES and " " not in node.value:
                bad.append(f"{_shown(path)}:{node.lineno}: {module} names {node.value!r}")
    assert not bad, "dbench must not depend on the reference models (they plug in via entry points):\n" + "\n".join(bad)


def test_every_dbench_import_resolves():
    """No import (lazy ones included) names a dbench module that does not exist, or a name it lacks."""
    problems = unresolved_imports(DBENCH)
    # The reference models plug into the CLI and import dbench: their imports must resolve as well.
    problems += unresolved_imports(ROOT / "reference_models", ("reference_models", "dbench"), (DBENCH,))
    assert not problems, "imports of dbench names that do not exist:\n" + "\n".join(problems)


def test_the_analysis_sees_the_graph(dbench_imports):
    """The collector is not blind: it finds known edges of each kind in dbench's own source."""
    internal, _ = dbench_imports
    assert len(internal) > 100
    assert any(i.lazy for i in internal) and any(not i.lazy for i in internal)


# ------------------------------------------------------------------------------------------------
# The checks themselves catch what they should (on a small made-up package)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "pkg"


TOY_LAYERS = {0: ("pkg.low",), 1: ("pkg.mid",), 2: ("pkg.high",)}


def test_checks_catch_every_import_form(tmp_path):
    pkg = _package(tmp_path, {
        "pkg/__init__.py": "def f():\n    from pkg.high import thing\n",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def lazy():\n    from pkg.high import b\n",
        "pkg/low/r.py": "from ..mid import m\n",
        "pkg/low/d.py": "import importlib\n\ndef g():\n    return importlib.import_module('pkg.high.b')\n",
        "pkg/low/n.py": "REGISTRY = {'x': 'pkg.mid.m'}\n",
        "pkg/low/ok.py": "import os\nfrom pkg.low import a\n",
        "pkg/mid/__init__.py": "",
        "pkg/mid/m.py": "import pkg.low.a\n",
        "pkg/high/__init__.py": "",
        "pkg/high/b.py": "from pkg.mid import m\nimport pkg\n",
    })
    internal, outside = collect_imports(pkg)
    problems = layer_violations(internal, TOY_LAYERS, facade="pkg")
    text = "\n".join(problems)
    assert "pkg.low.a (layer 0" in text and "lazy from of pkg.high.b" in text
    assert "pkg.low.r (layer 0" in text and "pkg.mid.m" in text  # relative import
    assert "pkg.low.d (layer 0" in text and "import_module of pkg.high.b" in text
    assert "pkg.low.n (layer 0" in text and "name of pkg.mid.m" in text
    assert "pkg.high.b imports the facade package pkg itself" in text
    assert "pkg.low.ok" not in text and "pkg/__init__" not in text  # downward and lazy facade: fine
    assert any(p.endswith("a.py:2: pkg.low.a (layer 0 foundation) has a lazy from of pkg.high.b (layer 2 "
                          "encoders), which is above it") for p in problems)
    assert ("pkg.low.ok", "os") in {(m, n) for m, _, _, n in outside}


def test_imports_of_missing_modules_and_names_are_caught(tmp_path):
    pkg = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "from pkg.low.a import x\n",
        "pkg/low/a.py": "x = 1\nif x:\n    y = 2\ntry:\n    from os import path as z\nexcept ImportError:\n    pass\n",
        "pkg/low/lazy.py": "def f():\n    from pkg.low.gone import thing\n",
        "pkg/low/plain.py": "import pkg.low.gone\n",
        "pkg/low/dyn.py": "import importlib\n\ndef g():\n    return importlib.import_module('pkg.low.gone')\n",
        "pkg/low/name.py": "from pkg.low.a import missing\n",
        "pkg/low/ok.py": "from pkg.low.a import x, y, z\nfrom pkg.low import a, x as also\nfrom pkg.open import any_name\n"
                         "import pkg.low.a\nfrom . import a as rel\nfrom os import nothing_checked\n",
        "pkg/open.py": "def __getattr__(name):\n    return name\n",
    })
    problems = unresolved_imports(pkg)
    text = "\n".join(problems)
    assert "lazy.py:2: pkg.low.lazy imports no module pkg.low.gone" in text
    assert "plain.py:1: pkg.low.plain imports no module pkg.low.gone" in text
    assert "dyn.py:4: pkg.low.dyn imports no module pkg.low.gone" in text
    assert "name.py:1: pkg.low.name imports pkg.low.a has no 'missing'" in text
    assert len(problems) == 4, text  # nothing from ok.py: defined names, submodules, __getattr__, other packages


def test_facade_may_not_import_upward_at_module_level(tmp_path):
    pkg = _package(tmp_path, {"pkg/__init__.py": "from pkg.high import b\n", "pkg/high/__init__.py": "",
                              "pkg/high/b.py": ""})
    internal, _ = collect_imports(pkg)
    assert any("at module level" in p for p in layer_violations(internal, TOY_LAYERS, facade="pkg"))


def test_type_checking_imports_count_for_the_layers_but_not_as_module_level(tmp_path):
    pkg = _package(tmp_path, {
        "pkg/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import b\n",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.high.b import T\n",
        "pkg/high/__init__.py": "",
        "pkg/high/b.py": "T = int\n",
    })
    internal, _ = collect_imports(pkg)
    problems = layer_violations(internal, TOY_LAYERS, facade="pkg")
    assert len(problems) == 1 and "pkg.low.a (layer 0" in problems[0] and "lazy from of pkg.high.b" in problems[0]


def test_cycles_are_found_even_through_lazy_imports(tmp_path):
    pkg = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def f():\n    import pkg.low.b\n",
        "pkg/low/b.py": "from pkg.low import c\n",
        "pkg/low/c.py": "from . import a\n",
        "pkg/low/d.py": "import pkg.low.a\n",  # into the cycle, not part of it
    })
    internal, _ = collect_imports(pkg)
    cycles = import_cycles(internal)
    assert cycles == [["pkg.low.a", "pkg.low.b", "pkg.low.c"]]
    assert "pkg.low.a -> pkg.low.b (" in describe_cycle(cycles[0], internal)
    assert "low/a.py:2)" in describe_cycle(cycles[0], internal)


def test_a_package_init_importing_its_submodule_is_no_cycle(tmp_path):
    pkg = _package(tmp_path, {"pkg/__init__.py": "", "pkg/low/__init__.py": "from pkg.low.a import x\n",
                              "pkg/low/a.py": "x = 1\n"})
    internal, _ = collect_imports(pkg)
    assert import_cycles(internal) == []
