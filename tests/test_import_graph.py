"""No import circles in eebench: no module imports one of its importers, directly or through others.

The graph is read from the source (every module ast-parsed, relative imports resolved, imports inside functions
included), so a circle that only an import inside a function closes is found too. An edge goes to the module an
import statement names: ``from . import x`` names the submodule ``x`` where there is one, else the package itself;
the parent packages that Python imports along the way are not edges (every package that imports its modules to
register them would otherwise be a circle).
"""
import ast
from pathlib import Path

import eebench


def modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name → (file, is a package), for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports (anywhere in its file)."""
    mods = modules(root)
    graph = {}
    for name, (path, package) in mods.items():
        here = name.split(".") if package else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                base = node.module
                if node.level:  # one dot: this module's package; each further dot one package up
                    base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
                for a in node.names:
                    target = f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                    if target in mods:
                        edges.add(target)
        graph[name] = edges - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one circle through them."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_one_circle(graph, component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _one_circle(graph, component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]] & component):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                paths.append(path + [w])
    return sorted(component)


def test_no_module_imports_one_of_its_importers():
    found = circles(import_graph(Path(eebench.__file__).parent))
    assert not found, "import circles:\n" + "\n".join(" → ".join(c) for c in found)


def test_the_graph_sees_relative_imports_inside_functions(tmp_path):
    """A circle closed only by an import inside a function, through ``from . import``, ``from .. import`` and a
    package's registration import, is found (so the test above cannot pass by reading too little)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from . import a  # registration\n")
    (pkg / "sub" / "a.py").write_text("from ..low import X\n\ndef f():\n    from .. import top\n    return top\n")
    (pkg / "top.py").write_text("import pkg.sub\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.low": set(), "pkg.sub": {"pkg.sub.a"}, "pkg.sub.a": {"pkg.low", "pkg.top"},
                     "pkg.top": {"pkg.sub"}}
    assert circles(graph) == [["pkg.sub", "pkg.sub.a", "pkg.top", "pkg.sub"]]
    (pkg / "top.py").write_text("X = 2\n")  # the circle opened: nothing found
    assert circles(import_graph(pkg)) == []
