"""The import graph of callserver has no circle.

A circle is a strongly connected component of the graph of callserver's modules: every import
counts, those under ``if TYPE_CHECKING:`` and those inside functions too (grimp reads them all
from the source). Each circle is named by its sorted module list, so a failure says which
modules import each other round. The layers contract (pyproject.toml) keeps packages in order;
this keeps the modules of one package from leaning on each other in a ring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

Circle = tuple[str, ...]


def circles(imports: Mapping[str, Iterable[str]]) -> set[Circle]:
    """The strongly connected components of ``imports`` with more than one module, or with a
    module that imports itself, each as its sorted module tuple (Tarjan's algorithm, iterative).
    """
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[Circle] = set()
    for root in sorted(imports):
        if root in order:
            continue
        work = [(root, iter(sorted(imports[root])))]
        order[root] = low[root] = len(order)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, pending = work[-1]
            step = next(pending, None)
            if step is not None:
                if step not in order:
                    order[step] = low[step] = len(order)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(imports.get(step, ())))))
                elif step in on_stack:
                    low[module] = min(low[module], order[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == order[module]:
                component = _pop_component(stack, on_stack, module)
                if len(component) > 1 or module in imports[module]:
                    found.add(tuple(sorted(component)))
    return found


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    component: list[str] = []
    while True:
        module = stack.pop()
        on_stack.discard(module)
        component.append(module)
        if module == root:
            return component


@pytest.fixture(scope="module")
def found() -> set[Circle]:
    """The circles of callserver's import graph as it is in the source tree."""
    graph = grimp.build_graph("callserver", cache_dir=None)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    return circles(imports)


def test_circles_are_found_as_strongly_connected_components() -> None:
    """Two circles joined by a one-way import stay two, a self-import is one, a chain is none."""
    imports = {
        "a": {"b"},
        "b": {"a", "c"},
        "c": {"d"},
        "d": {"e"},
        "e": {"c"},
        "f": {"f"},
        "g": {"h"},
        "h": set(),
    }
    assert circles(imports) == {("a", "b"), ("c", "d", "e"), ("f",)}


def test_the_import_graph_has_no_circle(found: set[Circle]) -> None:
    """No module of callserver imports itself back through others, by any path."""
    assert sorted(found) == []
