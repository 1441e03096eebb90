"""The metric catalog matches what the services define (read from their source with `ast`, no
import: services never import each other) and, for vLLM, the installed vLLM's source."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from tierwise_observability.metrics_catalog import SERVICES, VLLM, known_series

TYPES = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}


def families_in_source(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    consts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    consts[t.id] = node.value.value

    def value(n: ast.expr) -> str:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            return n.value
        if isinstance(n, ast.Name):
            return consts[n.id]
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            return value(n.left) + value(n.right)
        raise ValueError(f"{path}:{n.lineno}: metric name is not a static string")

    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TYPES and node.args:
            typ = TYPES[node.func.id]
            name = value(node.args[0])
            out[name.removesuffix("_total") if typ == "counter" else name] = typ
    return out


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_catalog_matches_service_source(service: str, root: Path) -> None:
    src = root / "workloads" / service / f"tierwise_{service}" / "observability.py"
    assert src.exists(), src
    assert families_in_source(src) == SERVICES[service]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_metric_is_named_tierwise_service(service: str) -> None:
    """One prefix convention: a service's families are `tierwise_<service>_...` (their rules and
    dashboards then say which service a series comes from)."""
    bad = sorted(n for n in SERVICES[service] if not n.startswith(f"tierwise_{service}_"))
    assert not bad, f"{service}: metric names must start with tierwise_{service}_, these do not: {bad}"


def test_every_workload_that_defines_metrics_is_in_the_catalog(root: Path) -> None:
    """No service's metrics escape the two checks above: any workload module that creates
    prometheus_client collectors belongs to a service listed in the catalog, with those names."""
    found: dict[str, dict[str, str]] = {}
    for src in sorted((root / "workloads").glob("*/tierwise_*/**/*.py")):
        if "prometheus_client" in src.read_text():
            fams = families_in_source(src)
            if fams:
                found.setdefault(src.relative_to(root / "workloads").parts[0], {}).update(fams)
    assert found == SERVICES


def test_queries_in_stacks_and_constructs_name_real_series(root: Path) -> None:
    """KEDA triggers and other queries written in the CDK code (not generated here) name our services'
    series as /metrics exposes them (a counter's series ends in `_total`), so a rename reaches them too."""
    series = known_series()
    used: dict[str, set[str]] = {}
    for src in sorted([*(root / "stacks").rglob("*.py"), *(root / "constructs").rglob("*.py")]):
        for name in re.findall(r"\btierwise_(?:router|rag|guardrails)_[a-z0-9_]+", src.read_text()):
            used.setdefault(name, set()).add(str(src.relative_to(root)))
    assert used, "no query names a tierwise_<service>_ series: the scan is broken"
    unknown = {n: sorted(f) for n, f in used.items() if n not in series}
    assert not unknown, f"series not exposed by any service (see metrics_catalog.py): {unknown}"


def test_vllm_names_exist_in_installed_vllm(root: Path) -> None:
    py = Path(os.environ.get("TIERWISE_VLLM_PYTHON", root / ".venv-vllm" / "bin" / "python"))
    found = sorted(py.parent.parent.glob("lib/python3*/site-packages/vllm/v1/metrics/loggers.py"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"no vLLM install next to {py}: run `make vllm-env`")
        pytest.skip("no .venv-vllm (make vllm-env)")
    names = set(re.findall(r'name="(vllm:[a-z0-9_:]+)"', found[0].read_text()))
    missing = {n for n in VLLM if n.removesuffix("_total") not in names}
    assert not missing, missing
