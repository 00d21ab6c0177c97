"""The top-level packages form a DAG: bandits and clustering at the bottom, service and
evaluation side by side, cli and bench above them (see /work/shared/STYLE.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("bandits", "clustering", "service", "evaluation", "cli", "bench")
# What each pure package may import besides the standard library.
PURE = {"bandits": {"numpy", "bandits"}, "clustering": {"numpy", "bandits", "clustering"}}
# Never import each other, in either direction: either must install and run alone.
SIBLINGS = ("service", "evaluation")
REDIS_CLIENTS = {"redis", "hiredis"}
REDIS_OWNER = "service.store"
# Benchmarks that measure Redis itself (a redis-py HINCRBY baseline, INFO commandstats and
# used_memory), not the service's use of it.
REDIS_MEASURED_BY = {
    "bench.cluster",
    "bench.hotpath",
    "bench.ingest",
    "bench.memory",
    "bench.roundtrips",
}


class Import(NamedTuple):
    """One imported module (or a name from it) at a line of a module of ours."""

    module: str
    line: int
    target: str
    names: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line}"


def module_name(root: Path, path: Path) -> str:
    """Return the dotted name of a source file under root."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Return every import of every module of `packages` under root, at any nesting level."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(root, path)
            is_package = path.name == "__init__.py"
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found += [Import(module, node.lineno, a.name, ()) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    target = _absolute(module, is_package, node.level, node.module)
                    names = tuple(a.name for a in node.names)
                    found.append(Import(module, node.lineno, target, names))
    return found


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def top(name: str) -> str:
    """Return the top-level package of a dotted name."""
    return name.split(".")[0]


def package_graph(imports: list[Import]) -> dict[str, set[str]]:
    """Return which of our top-level packages each of ours imports (itself excluded)."""
    graph: dict[str, set[str]] = {top(i.module): set() for i in imports}
    for i in imports:
        if top(i.target) in PACKAGES and top(i.target) != top(i.module):
            graph[top(i.module)].add(top(i.target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Return one description per cycle found in the package graph (empty for a DAG)."""
    found: list[str] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append(" -> ".join([*path[path.index(node) :], node]))
            return
        if node in done:
            return
        for child in sorted(graph.get(node, ())):
            visit(child, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def sibling_imports(imports: list[Import]) -> list[str]:
    """Return service importing evaluation, or evaluation importing service."""
    first, second = SIBLINGS
    pairs = {(first, second), (second, first)}
    return [
        f"{i.where} imports {i.target}" for i in imports if (top(i.module), top(i.target)) in pairs
    ]


def impure_imports(imports: list[Import]) -> list[str]:
    """Return imports by the pure packages of anything but numpy, the stdlib and bandits."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return [
        f"{i.where} imports {i.target}"
        for i in imports
        if top(i.module) in PURE and top(i.target) not in PURE[top(i.module)] | stdlib
    ]


def redis_imports(imports: list[Import]) -> list[str]:
    """Return imports of a Redis client outside the store (and the Redis benchmarks)."""
    return [
        f"{i.where} imports {i.target}"
        for i in imports
        if top(i.target) in REDIS_CLIENTS
        and not (i.module == REDIS_OWNER or i.module.startswith(f"{REDIS_OWNER}."))
        and i.module not in REDIS_MEASURED_BY
    ]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(imports: list[Import]) -> list[str]:
    """Return private modules or names imported from another of our top-level packages."""
    return [
        f"{i.where} imports {i.target} {', '.join(i.names)}".rstrip()
        for i in imports
        if top(i.target) in PACKAGES
        and top(i.target) != top(i.module)
        and (any(map(_private, i.target.split("."))) or any(map(_private, i.names)))
    ]


# -- the repository ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_imports() -> list[Import]:
    imports = imports_in(REPO)
    # The scan sees what it should: a few known imports, including one inside a function.
    assert {"bandits", "cli", "service", "evaluation", "bench"} <= set(package_graph(imports))
    assert any(i.module == "cli" and i.target == "evaluation.cli" for i in imports)
    return imports


def test_the_packages_form_a_dag(repo_imports: list[Import]) -> None:
    assert cycles(package_graph(repo_imports)) == []


def test_service_and_evaluation_never_import_each_other(repo_imports: list[Import]) -> None:
    assert sibling_imports(repo_imports) == []


def test_bandits_and_clustering_import_only_numpy_the_stdlib_and_bandits(
    repo_imports: list[Import],
) -> None:
    assert impure_imports(repo_imports) == []


def test_only_the_store_imports_redis(repo_imports: list[Import]) -> None:
    assert redis_imports(repo_imports) == []
    assert any(top(i.target) == "redis" for i in repo_imports)  # the store does


def test_no_private_name_crosses_a_package(repo_imports: list[Import]) -> None:
    assert private_imports(repo_imports) == []


# -- each check fails on a tree that breaks its rule ---------------------------------------


def _tree(root: Path, files: dict[str, str]) -> list[Import]:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(root).parents[:-1]:
            (root / parent / "__init__.py").touch()
    return imports_in(root)


# One concept per module: a service module past this many lines holds more than one.
MAX_SERVICE_MODULE_LINES = 500


def long_modules(root: Path, limit: int = MAX_SERVICE_MODULE_LINES) -> list[str]:
    """Return the modules under root/service longer than `limit` lines, with their length."""
    found = []
    for path in sorted((root / "service").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_no_service_module_is_over_the_line_limit() -> None:
    assert long_modules(REPO) == []


def test_a_long_service_module_is_found(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "big.py").write_text("x = 1\n" * 501)
    (tmp_path / "service" / "small.py").write_text("x = 1\n" * 500)
    assert long_modules(tmp_path) == ["service/big.py: 501 lines"]


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "cli/__init__.py": "import service.cli\n",
            "service/cli.py": "def run():\n    from cli import main\n",
            "bench/x.py": "import cli\n",
        },
    )
    assert cycles(package_graph(imports)) == ["cli -> service -> cli"]
    assert cycles({"bench": {"cli"}, "cli": {"service", "evaluation"}, "service": set()}) == []


def test_service_importing_evaluation_or_the_reverse_is_found(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "service/cli.py": "from evaluation.cli import add_commands\n",
            "evaluation/http_engine.py": "if True:\n    from service import child\n",
            "cli/__init__.py": "import evaluation\nimport service\n",
        },
    )
    assert sibling_imports(imports) == [
        "service.cli:1 imports evaluation.cli",
        "evaluation.http_engine:2 imports service",
    ]


def test_a_pure_package_importing_beyond_numpy_and_bandits_is_found(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "bandits/a.py": "import math\nimport numpy as np\nfrom . import b\nimport scipy\n",
            "bandits/b.py": "from clustering import kmeans\n",
            "clustering/c.py": "from bandits.validation import generator\nimport redis\n",
            "service/d.py": "import fastapi\n",
        },
    )
    assert impure_imports(imports) == [
        "bandits.a:4 imports scipy",
        "bandits.b:1 imports clustering",
        "clustering.c:2 imports redis",
    ]


def test_redis_outside_the_store_is_found(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "service/store/serving.py": "import hiredis\nimport redis.asyncio as redis\n",
            "service/state.py": "from redis.exceptions import DataError\n",
            "evaluation/x.py": "def f():\n    import hiredis\n",
            "bench/ingest.py": "import redis\n",
            "bench/other.py": "import redis\n",
        },
    )
    assert redis_imports(imports) == [
        "service.state:1 imports redis.exceptions",
        "evaluation.x:2 imports hiredis",
        "bench.other:1 imports redis",
    ]


def test_a_private_name_or_module_from_another_package_is_found(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "bandits/thompson.py": "from ._kernels import _rank\n",
            "clustering/c.py": "from bandits._validation import generator\n",
            "bench/b.py": "from bandits.thompson import _rank, rank\nimport service._x\n",
            "cli/__init__.py": "from service.embedded import __version__, answers_ping\n",
        },
    )
    assert private_imports(imports) == [
        "clustering.c:1 imports bandits._validation generator",
        "bench.b:1 imports bandits.thompson _rank, rank",
        "bench.b:2 imports service._x",
    ]
