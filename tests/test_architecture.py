"""The package's layout is its design: layers that import only downwards, no import circles, no
private names used across modules, thin workflow scripts, and analysis that never imports
TensorFlow. Read from the source with `ast`, so a violation fails here before it is run."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "batch_science"
# Bottom to top. A module may import modules of lower layers and of its own package (e.g. within
# training/); packages that share a layer do not import each other.
LAYERS = [
    ["io", "imports", "joblog", "trials"],
    ["config"],
    ["tables"],
    ["data", "models"],
    ["training", "analysis"],
    ["tuning"],
    ["release", "bench"],
]
LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """The layer unit of a module: batch_science.training.engine -> training, batch_science.io -> io."""
    return module.split(".")[1] if "." in module else "package"


def imports(tree: ast.Module, known: set[str]):
    """(imported module, names taken from it) for every import of the package, also inside functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("batch_science"):
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("batch_science"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    yield submodule, []
                else:
                    yield node.module, [alias.name]


def import_graph() -> dict[str, dict[str, list[str]]]:
    trees = modules()
    graph: dict[str, dict[str, list[str]]] = {}
    for name, tree in trees.items():
        edges = graph.setdefault(name, {})
        for target, names in imports(tree, set(trees)):
            if target != name and target in trees:
                edges.setdefault(target, []).extend(names)
    return graph


def find_circle(graph) -> list[str] | None:
    """One import circle of the graph (its modules in order), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, {}):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        stack.pop()
        state[node] = "done"
        return None

    for node in graph:
        if node not in state and (circle := visit(node)):
            return circle
    return None


def layer_violations(graph) -> list[str]:
    wrong = []
    for source, targets in graph.items():
        for target in targets:
            if unit(source) == unit(target) or LAYER_OF[unit(target)] < LAYER_OF[unit(source)]:
                continue
            wrong.append(
                f"{source} imports {target} (layer {LAYER_OF[unit(target)]} from layer {LAYER_OF[unit(source)]})"
            )
    return wrong


def test_every_module_has_a_layer():
    assert {unit(name) for name in modules()} - {"package"} <= set(LAYER_OF)


def test_the_package_has_no_import_circle():
    assert find_circle(import_graph()) is None


def test_imports_point_down_the_layers():
    assert layer_violations(import_graph()) == []


def test_no_module_uses_another_modules_private_names():
    trees = modules()
    used = []
    for name, tree in trees.items():
        for target, names in imports(tree, set(trees)):
            used += [f"{name}: {target}.{n}" for n in names if n.startswith("_") and target != name]
        aliases = {alias.asname or alias.name: f"{node.module}.{alias.name}" for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("batch_science")
                   for alias in node.names if f"{node.module}.{alias.name}" in trees}  # fmt: skip
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                if node.attr.startswith("_") and not node.attr.startswith("__"):
                    used.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    assert used == []


def test_analysis_never_imports_tensorflow():
    for name, tree in modules().items():
        if unit(name) != "analysis":
            continue
        for node in ast.walk(tree):
            imported = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(m.split(".")[0] in ("tensorflow", "keras", "tensorflow_datasets") for m in imported), name


@pytest.mark.parametrize("script", sorted((REPO / "workflow" / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_workflow_scripts_are_thin_adapters(script):
    """A script unpacks the snakemake object and calls the package: no functions, classes or loops of its own."""
    tree = ast.parse(script.read_text())
    own = [
        type(node).__name__
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.If))
    ]
    assert own == [] and len(script.read_text().splitlines()) <= 25


# -- the checks themselves can fail ----------------------------------------------------------------
def test_a_circle_and_an_upward_import_are_found():
    graph = {"batch_science.config": {"batch_science.tables": []}, "batch_science.tables": {"batch_science.config": []}}
    assert find_circle(graph) == ["batch_science.config", "batch_science.tables", "batch_science.config"]
    assert layer_violations(graph) == ["batch_science.config imports batch_science.tables (layer 2 from layer 1)"]
    assert layer_violations({"batch_science.training.engine": {"batch_science.analysis.steps": []}})  # siblings


def test_every_table_keyed_by_optimizer_covers_the_contracts_optimizers():
    from batch_science.analysis.figures import OPTIMIZER_STYLE
    from batch_science.config import load_schema
    from batch_science.release.layout import OPTIMIZER_NAMES
    from batch_science.trials import OPTIMIZERS

    assert set(OPTIMIZER_STYLE) == set(OPTIMIZER_NAMES) == set(OPTIMIZERS)
    assert load_schema()["$defs"]["optimizer"]["enum"] == list(OPTIMIZERS)
