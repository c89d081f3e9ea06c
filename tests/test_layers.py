"""The layer rule, read from the source: no module of sw2 imports from a layer above its own, and no import
circle anywhere in sw2 (imports inside functions count; `if TYPE_CHECKING:` imports, for type hints only, do
not). The layers, bottom up: spec (and the light modules beside it) → data → models → engine → evaluation →
tasks, pre-flight, bundle, provenance, ship, tuning → api (and the prediction table it builds) → cli and serve."""

from __future__ import annotations

import ast
from pathlib import Path

SW2 = Path(__file__).resolve().parents[1] / "sw2"
TOP = ["sw2.tasks", "sw2.preflight", "sw2.bundle", "sw2.api", "sw2.serve", "sw2.cli", "sw2.ship", "sw2.tuning",
       "sw2.selection", "sw2.runs", "sw2.finish", "sw2.run_report", "sw2.ensembles", "sw2.teacher",
       "sw2.runtime", "sw2.provenance", "sw2.prediction_table", "sw2.presets", "sw2.starter", "sw2.console",
       "sw2.spec_reference"]  # fmt: skip
ABOVE = {  # a layer: what it must never import
    "sw2.data": ["sw2.models", "sw2.engine", "sw2.evaluation", *TOP],
    "sw2.models": ["sw2.engine", "sw2.evaluation", *TOP],
    "sw2.engine": ["sw2.evaluation", *TOP],
    "sw2.evaluation": TOP,
    "sw2.spec": ["sw2.data", "sw2.models", "sw2.engine", "sw2.evaluation", *TOP],
}


def modules() -> dict[str, Path]:
    found = {}
    for path in SW2.rglob("*.py"):
        name = ".".join(path.relative_to(SW2.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module's sw2 imports at run time, by module name."""
    found = modules()

    def module_of(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in found.items():
        deps: set[str | None] = set()
        todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
        while todo:
            for node in ast.iter_child_nodes(todo.pop()):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue  # for type hints only
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sw2"):
                    deps |= {module_of(f"{node.module}.{a.name}") for a in node.names}
                elif isinstance(node, ast.Import):
                    deps |= {module_of(a.name) for a in node.names if a.name.startswith("sw2")}
                todo.append(node)
        graph[name] = {d for d in deps if d is not None and d != name and d != "sw2"}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_module_imports_from_a_layer_above():
    graph = import_graph()
    wrong = [
        f"{m} imports {d}"
        for m, deps in sorted(graph.items())
        for layer, banned in ABOVE.items()
        if within(m, layer)
        for d in sorted(deps)
        if any(within(d, b) for b in banned)
    ]
    assert not wrong, wrong


def test_no_import_circle_in_sw2():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_of_sw2_is_in_a_layer_or_beside_the_spec():
    """A new module at the top of sw2 is placed: in TOP (nothing below may import it) or among the light
    modules beside the spec that every layer may use."""
    beside = {"sw2", "sw2.choices", "sw2.control_defaults", "sw2.errors", "sw2.files", "sw2.log", "sw2.model_options",
              "sw2.outputs",
              "sw2.plugins", "sw2.registry", "sw2.spec", "sw2.task_rules", "sw2.where", "sw2.yamlfile"}  # fmt: skip
    layers = [*ABOVE, *TOP]
    loose = [m for m in modules() if m not in beside and not any(within(m, layer) for layer in layers)]
    assert not loose, f"place these in a layer of tests/test_layers.py: {loose}"
