"""No import circle inside ``src``.

The graph is grimp's (the library behind import-linter): every import statement of every
module, at module level, inside functions and under ``if TYPE_CHECKING:``. A circle is a
strongly connected component of more than one module; the failure lists each one with the
shortest circles through its modules and the line of every import on them.
"""

from __future__ import annotations

import importlib
import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

Graph = Mapping[str, set[str]]


def import_graph(package: str) -> tuple[grimp.ImportGraph, dict[str, set[str]]]:
    """grimp's graph of ``package`` and its direct imports between the package's own modules."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    modules = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    return graph, edges


def strongly_connected(edges: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)


def shortest_circle(edges: Graph, start: str, within: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` through modules of ``within`` (BFS)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(edges[module] & within):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if target not in parent:
                parent[target] = module
                queue.append(target)
    raise AssertionError(f"{start} is on no circle")  # only called on component members


def canonical(circle: list[str]) -> tuple[str, ...]:
    """A circle rotated to start at its smallest module, so rotations compare equal."""
    ring = circle[:-1]
    first = ring.index(min(ring))
    return tuple(ring[first:] + ring[:first])


def import_circles(package: str) -> list[str]:
    """One readable entry per import circle in ``package``; empty when there is none."""
    graph, edges = import_graph(package)
    report = []
    for component in strongly_connected(edges):
        circles = {canonical(shortest_circle(edges, m, set(component))) for m in component}
        lines = [f"circle among {len(component)} modules: {', '.join(component)}"]
        for ring in sorted(circles, key=lambda r: (len(r), r)):
            lines.append("    " + describe(graph, [*ring, ring[0]]))
        report.append("\n".join(lines))
    return report


def describe(graph: grimp.ImportGraph, circle: Iterable[str]) -> str:
    """``a -> b (a line 3) -> a (b line 9)``: each hop with the first line that imports."""
    hops = list(circle)
    text = hops[0]
    for importer, imported in itertools.pairwise(hops):
        details = graph.get_import_details(importer=importer, imported=imported)
        lines = sorted({d["line_number"] for d in details})
        where = f"{importer.rsplit('.', 1)[-1]} line {', '.join(map(str, lines))}"
        text += f" -> {imported} ({where})"
    return text


def assert_no_import_circle(package: str) -> None:
    """Fail listing every import circle in ``package``."""
    circles = import_circles(package)
    if circles:
        pytest.fail(f"{len(circles)} import circle(s) in {package}:\n" + "\n".join(circles))


def test_src_has_no_import_circle() -> None:
    assert_no_import_circle("src")


# --------------------------------------------------------------------------- the check fails


def write_package(root: Path, name: str, modules: dict[str, str]) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(source)
    importlib.invalidate_caches()
    return name


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_acyclic_package_passes(packages: Path) -> None:
    name = write_package(
        packages,
        "import_graph_acyclic",
        {
            "a": "from import_graph_acyclic import b\n",
            "b": "import import_graph_acyclic.c\n\ndef f():\n    from . import c\n",
            "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\n",
        },
    )
    assert import_circles(name) == []
    assert_no_import_circle(name)


def test_circles_through_function_level_and_type_checking_imports_fail(packages: Path) -> None:
    name = write_package(
        packages,
        "import_graph_cyclic",
        {
            "a": "from import_graph_cyclic import b\n",
            "b": "def f():\n    from import_graph_cyclic import a\n",
            "c": "from import_graph_cyclic.d import X\n",
            "d": "from typing import TYPE_CHECKING\nX = 1\nif TYPE_CHECKING:\n"
            "    from import_graph_cyclic import e\n",
            "e": "from . import c\n",
            "f": "from . import a\n",  # imports into a circle without being on one
        },
    )
    circles = import_circles(name)
    assert circles == [
        "circle among 2 modules: import_graph_cyclic.a, import_graph_cyclic.b\n"
        "    import_graph_cyclic.a -> import_graph_cyclic.b (a line 1)"
        " -> import_graph_cyclic.a (b line 2)",
        "circle among 3 modules: import_graph_cyclic.c, import_graph_cyclic.d, "
        "import_graph_cyclic.e\n"
        "    import_graph_cyclic.c -> import_graph_cyclic.d (c line 1)"
        " -> import_graph_cyclic.e (d line 4) -> import_graph_cyclic.c (e line 1)",
    ]
    with pytest.raises(pytest.fail.Exception, match="2 import circle"):
        assert_no_import_circle(name)
