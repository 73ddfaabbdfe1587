"""Print the shape of the keras_birds package: import graph, cycles, long code.

    python tools/code_shape.py [--root keras_birds] [--json]

(a) the import graph between modules, collapsed to subpackages / top-level
    modules (``evaluation -> data, models, run_dir``);
(b) import cycles between modules: those made of module-level imports, and,
    listed separately, those that need a function-local import to close;
(c) functions over ``--max-function`` lines and modules over ``--max-module``.

Static (ast only): nothing is imported, so it runs without Keras or torch. Imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_pkg: bool) -> str:
    """The absolute module named by a (possibly relative) ``from`` import."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # A package's own __init__ counts as level 1 = itself.
    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


class _ImportVisitor(ast.NodeVisitor):
    """Collects (target, local) for every import; local = inside a function."""

    def __init__(self, module: str, is_pkg: bool, modules: set[str]):
        self.module, self.is_pkg, self.modules = module, is_pkg, modules
        self.depth = 0
        self.found: list[tuple[str, bool]] = []

    def _visit_function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_function

    def visit_If(self, node: ast.If):
        # `if TYPE_CHECKING:` imports never run: annotations only, no dependency at run time.
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, target: str):
        # The nearest enclosing module we know about (``a.b.func`` -> ``a.b``).
        while target and target not in self.modules:
            target = target.rpartition(".")[0]
        # Importing an ancestor package is not a real dependency: Python has
        # already started it before this module could run.
        if target and target != self.module and not self.module.startswith(target + "."):
            self.found.append((target, self.depth > 0))

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom):
        base = _resolve(node, self.module, self.is_pkg)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.modules else base)


def _function_lengths(tree: ast.AST, module: str):
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out.append((f"{module}:{name}", child.end_lineno - child.lineno + 1))
                walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan) with more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _example_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One shortest cycle through the first module of a component."""
    start, members = comp[0], set(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ()) & members):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1] + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def _group(module: str, package: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else f"{package}/__init__"


def analyse(root: Path | str = "keras_birds", max_function: int = MAX_FUNCTION_LINES,
            max_module: int = MAX_MODULE_LINES) -> dict:
    root = Path(root).resolve()
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    top: dict[str, set[str]] = {m: set() for m in modules}
    every: dict[str, set[str]] = {m: set() for m in modules}
    long_functions, long_modules = [], []
    for module, path in files.items():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        visitor = _ImportVisitor(module, path.name == "__init__.py", modules)
        visitor.visit(tree)
        for target, local in visitor.found:
            every[module].add(target)
            if not local:
                top[module].add(target)
        long_functions += [(n, k) for n, k in _function_lengths(tree, module) if k > max_function]
        n_lines = len(text.splitlines())
        if n_lines > max_module:
            long_modules.append((module, n_lines))

    package = root.name
    groups: dict[str, set[str]] = {}
    for module, targets in every.items():
        src = _group(module, package)
        groups.setdefault(src, set())
        groups[src] |= {_group(t, package) for t in targets} - {src}

    cycles = [_example_cycle(top, c) for c in _sccs(top)]
    top_members = {m for c in _sccs(top) for m in c}
    local_cycles = [_example_cycle(every, c) for c in _sccs(every)
                    if not set(c) <= top_members]
    return {
        "graph": {k: sorted(v) for k, v in sorted(groups.items())},
        "cycles": cycles,
        "cycles_with_local_imports": local_cycles,
        "long_functions": sorted(long_functions, key=lambda x: -x[1]),
        "long_modules": sorted(long_modules, key=lambda x: -x[1]),
        "limits": {"function": max_function, "module": max_module},
    }


def render(shape: dict) -> str:
    lines = ["import graph (subpackages / top-level modules):"]
    for src, targets in shape["graph"].items():
        lines.append(f"  {src} -> {', '.join(targets) if targets else '(none)'}")
    lines.append("import cycles (module-level imports):")
    lines += [f"  {' -> '.join(c)}" for c in shape["cycles"]] or ["  none"]
    lines.append("import cycles closed by function-local imports:")
    lines += [f"  {' -> '.join(c)}" for c in shape["cycles_with_local_imports"]] or ["  none"]
    lines.append(f"functions over {shape['limits']['function']} lines:")
    lines += [f"  {n} ({k})" for n, k in shape["long_functions"]] or ["  none"]
    lines.append(f"modules over {shape['limits']['module']} lines:")
    lines += [f"  {n} ({k})" for n, k in shape["long_modules"]] or ["  none"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "keras_birds"))
    parser.add_argument("--max-function", type=int, default=MAX_FUNCTION_LINES)
    parser.add_argument("--max-module", type=int, default=MAX_MODULE_LINES)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    shape = analyse(args.root, args.max_function, args.max_module)
    print(json.dumps(shape, indent=2) if args.json else render(shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
