"""Build every stack of one environment into a cdktn App, and synthesize it atomically.

This is the only place environment config meets stacks (STYLE §5): each stack gets its slice of the
environment (`tierwise.config.slices`) and the stacks it references; cdktn turns those references into
outputs and remote-state reads. Which stack is passed to which is the dependency graph the stacks'
imports follow (tests/unit/test_import_rules.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import Environment
from .config.slices import Slices

#: Deploy order. Stack ids are `<env>-<layer>`.
LAYERS = ["network", "cluster", "capacity", "platform", "tenancy", "governance", "serving", "training", "observability", "agents"]
TARGET_VERSIONS = {"terraform": ">=1.10.0"}


def build_app(env: Environment, outdir: str | None = None, *, observability_generated: Path | None = None):
    """Create the App with all stacks for `env`. Imports the provider bindings (slow) on first call.
    `observability_generated`: where the generated observability files are (default: this checkout's)."""
    from cdktn import App

    from tierwise.stacks.agents import AgentsStack
    from tierwise.stacks.capacity import CapacityStack
    from tierwise.stacks.cluster import ClusterStack
    from tierwise.stacks.governance import GovernanceStack
    from tierwise.stacks.network import NetworkStack
    from tierwise.stacks.observability import ObservabilityStack
    from tierwise.stacks.platform import PlatformStack
    from tierwise.stacks.serving import ServingStack
    from tierwise.stacks.tenancy import TenancyStack
    from tierwise.stacks.training import TrainingStack

    kwargs = {"context": {"targetVersions": TARGET_VERSIONS}, "skip_backend_validation": False}
    app = App(outdir=outdir, **kwargs) if outdir else App(**kwargs)
    s = Slices.of(env, observability_generated=observability_generated)
    network = NetworkStack(app, s.network)
    cluster = ClusterStack(app, s.cluster, network=network)
    capacity = CapacityStack(app, s.capacity, cluster=cluster)
    platform = PlatformStack(app, s.platform, cluster=cluster, capacity=capacity)
    tenancy = TenancyStack(app, s.tenancy, cluster=cluster, capacity=capacity)
    tenancy.add_dependency(platform)
    GovernanceStack(app, s.governance)
    serving = ServingStack(app, s.serving, network=network, cluster=cluster, capacity=capacity)
    serving.add_dependency(tenancy)
    training = TrainingStack(app, s.training, cluster=cluster, models_bucket=serving.models_bucket,
                             adapters_bucket=serving.adapters_bucket)
    training.add_dependency(serving)
    observability = ObservabilityStack(app, s.observability, cluster=cluster, capacity=capacity)
    observability.add_dependency(serving)
    agents = AgentsStack(app, s.agents, cluster=cluster, capacity=capacity)
    agents.add_dependency(serving)
    return app


def synth_facts(env: Environment) -> dict:
    """Facts the policy gate needs that Terraform does not carry (token budgets are not resources).

    Written beside the stacks as `tierwise.json`, so policies keep reading `cdktf.out/` only."""
    return {
        "environment": env.name,
        "layers": LAYERS,
        "region": env.region,
        "account_id": env.account_id,
        "bedrock": {"allowed_model_ids": list(env.bedrock.allowed_model_ids)},
        "teams": [{"name": t.name, "cost_center": t.cost_center, "monthly_budget_usd": t.monthly_budget_usd,
                   "bedrock": [b.model_dump() for b in t.bedrock]} for t in env.teams],
    }


def write_facts(env: Environment, outdir: Path) -> None:
    """`tierwise.json` beside the stacks: written by `tierwise synth` and by the `cdktn` entry point alike."""
    (Path(outdir) / "tierwise.json").write_text(json.dumps(synth_facts(env), indent=2, sort_keys=True) + "\n")


def synth(env: Environment, out: Path) -> None:
    """Synthesize into a sibling temp dir, then swap it in: a failed synth never touches `out`."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build_app(env, str(tmp)).synth()
        write_facts(env, tmp)
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int
    kubernetes_objects: int


def summarize(out: Path) -> list[StackSummary]:
    rows = []
    order = {layer: i for i, layer in enumerate(LAYERS)}
    files = sorted((out / "stacks").glob("*/cdk.tf.json"),
                   key=lambda f: (order.get(f.parent.name.rsplit("-", 1)[-1], len(order)), f.parent.name))
    for f in files:
        doc = json.loads(f.read_text())
        res = doc.get("resource", {})
        rows.append(StackSummary(f.parent.name, sum(len(v) for v in res.values()), len(res.get("kubernetes_manifest", {}))))
    return rows
