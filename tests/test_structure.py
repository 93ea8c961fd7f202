"""The shape of the package, checked from its source: imports only point down (no circle, hidden by a
function-local import or not), distill stands beside finetune, the training path reads in pages, and domain
modules import each other at the top (function-local imports are for the commands, where they keep `--help`
from loading the domain)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "llmtool"
# The modules a training run goes through; none of their functions should outgrow a page.
TRAINING_PATH = ("training", "finetuning", "distillation", "recipe_data", "checkpoints", "rundir", "runlog",
                 "data", "evaluation", "layers", "pruning", "lora", "models", "model_facts", "scratch")
PAGE = 60  # lines


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node, modules: set[str]) -> set[str]:
    """The llmtool modules an import statement loads (`from llmtool import x` loads llmtool.x when x is one)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("llmtool"):
        named = {f"{node.module}.{alias.name}" for alias in node.names} & modules
        return named or ({node.module} & modules)
    return set()


def import_graph() -> dict[str, set[str]]:
    """module -> the llmtool modules it imports anywhere in its body (top level or inside functions)."""
    trees = _modules()
    names = set(trees)
    return {name: {target for node in ast.walk(tree) for target in _imported(node, names)} - {name, "llmtool"}
            for name, tree in trees.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_circle():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()))


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_distill_stands_beside_finetune():
    graph = import_graph()
    assert "llmtool.finetuning" not in graph["llmtool.distillation"]
    assert "llmtool.distillation" not in graph["llmtool.pruning"]
    assert "llmtool.models" not in graph["llmtool.lora"]


def test_domain_modules_import_llmtool_modules_at_the_top():
    """A function-local import of another llmtool module outside the commands hides a circle or a wrong layer."""
    local = []
    for name, tree in _modules().items():
        if name.startswith("llmtool.commands") or name == "llmtool.cli":
            continue
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and _imported(node, set(_modules())):
                    local.append(f"{name}.{function.name} (line {node.lineno})")
    assert not local, local


@pytest.mark.parametrize("module", TRAINING_PATH)
def test_functions_on_the_training_path_fit_a_page(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    long = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= PAGE}
    assert not long, long
