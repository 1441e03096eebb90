"""The metric catalog matches what the services define (read from their source with `ast`, no
import: services never import each other) and, for vLLM, the installed vLLM's source."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from tierwise_observability.metrics_catalog import SERVICES, VLLM

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
