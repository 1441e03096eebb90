"""The house reads one way (issue 17): environment -> config -> stacks (each gets its slice) -> constructs (props
only) -> Terraform JSON. These tests read the source with `ast` (nothing is imported), so a violation fails with
the file, line and import that breaks the rule.

- a stack module imports another stack module only if `tierwise_core/app.py` passes that stack to it;
- a stack never takes the whole `Environment` (it gets its slice from `tierwise.config.slices`);
- no construct imports the config model (only the fact tables listed in `CONSTRUCT_FACT_TABLES`);
- the config package has no import cycle, type-only imports included;
- no module of the root package is longer than `MAX_LINES`, and config/stacks modules say what they own.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: How the installed `tierwise` package maps onto the repository's folders (setup.py ROOTS).
ROOTS = {"tierwise": REPO / "tierwise_core", "tierwise.constructs": REPO / "constructs",
         "tierwise.stacks": REPO / "stacks", "tierwise.policies": REPO / "policies"}
#: Issue 17: "no module over ~450 lines outside generated files".
MAX_LINES = 450
#: Modules of `tierwise.config` that hold facts about the outside world (instance types, registries, Bedrock's
#: catalog), not the environment model; constructs may read them the way they read any constant.
CONSTRUCT_FACT_TABLES = {"tierwise.config.hardware", "tierwise.config.registries", "tierwise.config.bedrock_catalog"}


def module_name(path: Path) -> str:
    for pkg, root in ROOTS.items():
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([pkg, *parts])
    raise AssertionError(f"{path} is not under a package root")


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in `source` (the text of `module`), including those under
    `if TYPE_CHECKING:` and in functions; `from X import y` yields `X.y` too, so importing a submodule by name
    counts as importing it."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def file_imports(path: Path) -> list[tuple[int, str]]:
    return imports(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def _py(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts and "vendor" not in p.parts)


@functools.cache
def stack_dependencies() -> dict[str, set[str]]:
    """{stack module: stack modules passed to it} read from `build_app` in tierwise_core/app.py."""
    tree = ast.parse((REPO / "tierwise_core" / "app.py").read_text())
    build = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "build_app")
    class_module = {a.name: node.module.rsplit(".", 1)[-1] for node in ast.walk(build)
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tierwise.stacks.")
                    for a in node.names}
    var_module: dict[str, str] = {}
    deps: dict[str, set[str]] = {}
    for node in ast.walk(build):
        call = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in class_module):
            continue
        module = class_module[call.func.id]
        passed = {n.id for kw in call.keywords for n in ast.walk(kw.value) if isinstance(n, ast.Name)}
        deps[module] = {var_module[v] for v in passed if v in var_module}
        if isinstance(node, ast.Assign):
            var_module[node.targets[0].id] = module
    assert set(deps) == set(class_module.values()), "every stack class imported in build_app is built there"
    return deps


def test_the_dependency_graph_is_read_from_app_py() -> None:
    deps = stack_dependencies()
    assert len(deps) == 10
    assert deps["network"] == set() and deps["governance"] == set()
    assert deps["serving"] == {"network", "cluster", "capacity"}
    assert deps["training"] == {"cluster", "serving"}  # serving's buckets are passed in


def sibling_stack_violations(stack: str, found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    allowed = {f"tierwise.stacks.{m}" for m in stack_dependencies().get(stack, set()) | {"base"}}
    return [(line, mod) for line, mod in found if mod.startswith("tierwise.stacks.") and mod.count(".") == 2
            and mod != f"tierwise.stacks.{stack}" and mod not in allowed]


def config_model_violations(found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(line, mod) for line, mod in found if (mod == "tierwise.config" or mod.startswith("tierwise.config."))
            and not any(mod == f or mod.startswith(f + ".") for f in CONSTRUCT_FACT_TABLES)]


@pytest.mark.parametrize("path", _py(REPO / "stacks"), ids=lambda p: p.name)
def test_a_stack_imports_only_the_stacks_it_is_given(path: Path) -> None:
    bad = sibling_stack_violations(path.stem, file_imports(path))
    assert not bad, (f"stacks/{path.name} imports sibling stacks that tierwise_core/app.py does not pass to it: {bad}; "
                     "put shared facts on the config model instead")


@pytest.mark.parametrize("path", _py(REPO / "stacks"), ids=lambda p: p.name)
def test_a_stack_receives_a_slice_not_the_environment(path: Path) -> None:
    bad = [(line, mod) for line, mod in file_imports(path)
           if mod in {"tierwise.config.Environment", "tierwise.config.environment", "tierwise.config.model",
                      "tierwise.config.loader"} or mod.startswith("tierwise.config.environment.")]
    assert not bad, f"stacks/{path.name} reaches for the whole environment: {bad}; take its slice (tierwise.config.slices)"


@pytest.mark.parametrize("path", _py(REPO / "constructs"), ids=lambda p: str(p.relative_to(REPO / "constructs")))
def test_constructs_take_props_never_the_config_model(path: Path) -> None:
    bad = config_model_violations(file_imports(path))
    assert not bad, f"constructs/{path.relative_to(REPO / 'constructs')} imports the config model: {bad}; give it props"


def test_the_config_package_has_no_import_cycle() -> None:
    config = REPO / "tierwise_core" / "config"
    graph = {}
    for path in _py(config):
        me = module_name(path)
        graph[me] = {m for _, m in file_imports(path) if m.startswith("tierwise.config.") and m != me
                     and (config / (m.removeprefix("tierwise.config.").replace(".", "/") + ".py")).exists()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle in tierwise.config: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert "tierwise.config.environment" in graph["tierwise.config.slices"]
    assert not any("tierwise.config.environment" in deps for m, deps in graph.items()
                   if m not in {"tierwise.config", "tierwise.config.loader", "tierwise.config.model", "tierwise.config.slices"})


ROOT_MODULES = [p for root in ROOTS.values() if root != REPO / "tierwise_core" for p in _py(root)] + [
    p for p in _py(REPO / "tierwise_core")]


@pytest.mark.parametrize("path", ROOT_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_of_the_root_package_is_over_the_limit(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} lines (limit {MAX_LINES}): split it by job"


@pytest.mark.parametrize("path", [p for p in _py(REPO / "tierwise_core" / "config") + _py(REPO / "stacks")
                                  if p.read_text().strip()], ids=lambda p: str(p.relative_to(REPO)))
def test_config_and_stack_modules_say_what_they_own(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(REPO)} has no module docstring"


def test_fails_on_the_imports_issue_17_found() -> None:
    """The rules catch what the code used to do: agents importing ports and the namespace from serving/tenancy,
    serving importing `host_share` from tenancy, and the router config construct importing the config model."""
    old_agents = ("from .serving import GUARDRAILS_PORT, ROUTER_PORT\nfrom .tenancy import SERVING_NAMESPACE\n"
                  "from .cluster import ClusterStack\nfrom .base import TierwiseStack\n")
    assert [m for _, m in sibling_stack_violations("agents", imports(old_agents, "tierwise.stacks.agents"))] == [
        "tierwise.stacks.serving", "tierwise.stacks.tenancy"]
    old_serving = "from .tenancy import SERVING_NAMESPACE, host_share\nfrom .capacity import CapacityStack\n"
    assert [m for _, m in sibling_stack_violations("serving", imports(old_serving, "tierwise.stacks.serving"))] == [
        "tierwise.stacks.tenancy"]
    old_router_config = "from tierwise.config.model import Team\nfrom tierwise.config.registries import UPSTREAMS\n"
    found = config_model_violations(imports(old_router_config, "tierwise.constructs.serving.router_config"))
    assert [m for _, m in found] == ["tierwise.config.model", "tierwise.config.model.Team"]
    relative = config_model_violations(imports("from ...config import Environment\n", "tierwise.constructs.serving.x"))
    assert [m for _, m in relative] == ["tierwise.config", "tierwise.config.Environment"]
