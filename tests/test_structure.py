"""The house rules that keep bench/ readable: imports run one way (no cycle, not even through a
function-local import), a function-local import of a bench module says why, and rebuilding
tables from records never imports the training stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def bench_imports(tree: ast.AST) -> list[tuple[ast.stmt, list[str], bool]]:
    """(statement, bench modules it imports, whether it sits inside a function)."""
    found = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names if a.name.split(".")[0] == "bench"]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and (child.module or "").split(".")[0] == "bench":
                # `from bench.x import y` imports the module bench.x.y when there is one, else bench.x
                targets = [f"{child.module}.{a.name}" if is_module(f"{child.module}.{a.name}") else child.module
                           for a in child.names]
            if targets:
                found.append((child, sorted(set(targets)), local))
            visit(child, inside)

    visit(tree, False)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        edges = graph.setdefault(name, set())
        for _, targets, _ in bench_imports(ast.parse(path.read_text())):
            edges.update(t for t in targets if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_local_import():
    graph = {"bench.a": {"bench.b"}, "bench.b": {"bench.c"}, "bench.c": {"bench.a"}, "bench.d": set()}
    assert find_cycle(graph) == ["bench.a", "bench.b", "bench.c", "bench.a"]
    tree = ast.parse("def f():\n    from bench.runner import run_experiment\n")
    [(_, targets, local)] = bench_imports(tree)
    assert targets == ["bench.runner"] and local


def test_bench_has_no_import_cycle():
    graph = import_graph()
    assert "bench.runner" in graph and "bench.models.build" in graph["bench.models"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_a_function_local_import_of_a_bench_module_says_why():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node, targets, local in bench_imports(ast.parse("\n".join(lines))):
            if not local:
                continue
            explained = "#" in lines[node.lineno - 1]
            above = node.lineno - 2
            # a comment on the line, or in the block of comments and imports right above it
            while not explained and above >= 0 and lines[above].strip().startswith(("#", "from ", "import ")):
                explained = lines[above].strip().startswith("#")
                above -= 1
            if not explained:
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(targets)}")
    assert not unexplained, "\n".join(unexplained)


@pytest.mark.parametrize("command", [["table", "--all"], ["describe", "ablation-aspp"]])
def test_tables_and_describe_do_not_import_lightning(command, tmp_path):
    results = tmp_path / "results"
    if command[0] == "table":  # two committed records to rebuild tables from
        runs = results / "runs" / "ablation-aspp" / "largefov"
        runs.mkdir(parents=True)
        for seed in (0, 1):
            (runs / f"seed-{seed}.json").write_text((ROOT / f"results/runs/ablation-aspp/largefov/seed-{seed}.json").read_text())
        command = [*command, "--results-dir", str(results)]
    code = ("import sys\nfrom bench.cli import main\n"
            f"assert main({command!r}) == 0\n"
            "stack = ('pytorch_lightning', 'lightning', 'lightning_fabric')\n"
            "print('lightning imported:', sorted(m for m in sys.modules if m.split('.')[0] in stack))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lightning imported: []" in done.stdout
    if command[0] == "table":
        assert (results / "ablation-aspp.md").is_file()
