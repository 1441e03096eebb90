"""``tierwise-adapters`` — the adapter supply chain from the command line (also ``tierwise adapters``
through the main CLI's git-style dispatch).

Registry commands (light): list, show, verify, publish, promote, rollback, rollout.
Pipeline commands: dataset (light), train and gate (need the ``train`` extra: torch/transformers/peft).
Refusals (gate failed, over the rank/size limit, residency budget full) exit with status 2 and a
message on stderr; nothing is changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tierwise_distill.hotload import HotloadError, Rollout, VllmAdapterClient, write_routes
from tierwise_distill.registry import Registry, RegistryError
from tierwise_distill.settings import Settings
from tierwise_distill.store import ConflictError, StoreError, open_store

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _registry(url: str | None) -> Registry:
    s = Settings()
    if url:
        s = s.model_copy(update={"registry_url": url})
    return Registry(open_store(s.registry_url, s.s3_client()), s.limits())


def _out(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


RegistryOpt = Annotated[str | None, typer.Option("--registry", help="path, file:// or s3:// (env TIERWISE_DISTILL_REGISTRY_URL)")]


@app.command("list")
def list_(registry: RegistryOpt = None) -> None:
    """Adapters with their versions and channel pointers."""
    r = _registry(registry)
    _out([{"name": n, "versions": r.versions(n),
           "channels": {c: v["version"] for c, v in r.channels(n).items()}} for n in r.names()])


@app.command()
def show(ref: Annotated[str, typer.Argument(help="name, name@3 or name@channel")], registry: RegistryOpt = None) -> None:
    """Manifest of one version (default: the prod channel's) and the channels."""
    r = _registry(registry)
    try:
        name, v = r.resolve(ref if "@" in ref else (ref + "@prod" if r.channel(ref, "prod") else
                                                      f"{ref}@{max(r.versions(ref), default=0)}"))
        _out({"manifest": r.manifest(name, v), "channels": r.channels(name)})
    except RegistryError as e:
        _fail(str(e))


@app.command()
def verify(name: str, version: int, registry: RegistryOpt = None) -> None:
    """Re-check every file of a version against its manifest sha256."""
    try:
        m = _registry(registry).verify(name, version)
    except RegistryError as e:
        _fail(str(e))
    _out({"name": name, "version": version, "files": len(m["files"]), "ok": True})


@app.command()
def publish(name: str, adapter_dir: Path,
            train_summary: Annotated[Path, typer.Option(help="train_summary.json from `train`")],
            gate_report: Annotated[Path | None, typer.Option(help="gate report JSON from `gate`")] = None,
            registry: RegistryOpt = None) -> None:
    """Store an adapter as the next immutable version (refused over the rank/size limits)."""
    ts = json.loads(train_summary.read_text())
    metrics = {k: ts.get(k) for k in ("first_loss", "final_loss", "min_loss", "steps", "train_examples")}
    gr = json.loads(gate_report.read_text()) if gate_report else None
    if gr:
        metrics["gate_eval"] = gr.get("eval")
    try:
        m = _registry(registry).publish(
            name, adapter_dir, base_model={"name": Path(ts["base_model"]["path"]).name, "sha256": ts["base_model"]["sha256"]},
            dataset={"id": ts["dataset_id"]}, metrics=metrics, gate_report=gr,
            extra={"training": {"config_hash": ts["config_hash"], "method": ts["config"]["method"]}})
    except RegistryError as e:
        _fail(str(e))
    _out({"name": m["name"], "version": m["version"], "size_bytes": m["size_bytes"], "gate": m["gate"]})


@app.command()
def promote(name: str, version: int, channel: str = "prod", reason: str = "", actor: str = "",
            force: Annotated[bool, typer.Option(help="promote without a passed gate (recorded)")] = False,
            registry: RegistryOpt = None) -> None:
    """Move the channel pointer to VERSION (needs a passed gate report unless --force)."""
    try:
        _out(_registry(registry).promote(name, version, channel, actor=actor, reason=reason, force=force))
    except (RegistryError, ConflictError) as e:
        _fail(str(e))


@app.command()
def rollback(name: str, channel: str = "prod", reason: str = "", actor: str = "", registry: RegistryOpt = None) -> None:
    """Move the channel pointer back to the version it held before."""
    try:
        _out(_registry(registry).rollback(name, channel, actor=actor, reason=reason))
    except (RegistryError, ConflictError) as e:
        _fail(str(e))


@app.command()
def rollout(name: str, server: Annotated[list[str], typer.Option(help="vLLM base URL (repeat)")],
            phase: Annotated[str, typer.Option(help="load | finish")] = "load", channel: str = "prod",
            canary: Annotated[float, typer.Option(help="traffic share of the new version in the load phase")] = 1.0,
            routes_out: Annotated[Path | None, typer.Option(help="write the router weights here")] = None,
            model: str = "tiny", base_sha256: str | None = None, registry: RegistryOpt = None) -> None:
    """Hot-load the channel's version into vLLM servers (load), or shift all traffic and drain/unload
    older versions (finish)."""
    s = Settings()
    ro = Rollout(_registry(registry), [VllmAdapterClient(u) for u in server], Path(s.lora_root).resolve(),
                 model=model, max_resident=s.max_resident, base_sha256=base_sha256,
                 server_path_template=s.server_lora_path)
    try:
        doc = ro.load(name, channel, canary) if phase == "load" else ro.finish(name, channel)
    except (RegistryError, HotloadError, StoreError) as e:
        _fail(str(e))
    if routes_out:
        write_routes(doc, routes_out)
    _out(doc)


@app.command()
def dataset(exports: list[Path], out: Annotated[Path, typer.Option(help="datasets root")],
            ledger: Annotated[Path | None, typer.Option(help="router ledger: keep only Tier-2 ok requests")] = None,
            guard: Annotated[Path | None, typer.Option(help="curated guard cases JSONL")] = None,
            task: Annotated[list[str] | None, typer.Option(help="allowed task (repeat)")] = None,
            eval_fraction: float = 0.2, seed: int = 0,
            require_guardrails: Annotated[bool, typer.Option(help="refuse the regex fallback scrubber")] = False) -> None:
    """Build a scrubbed, deduplicated, split dataset from Tier-2 exports; prints its manifest."""
    from tierwise_distill.dataset import BuildConfig, build_dataset
    from tierwise_distill.scrub import FallbackRegexScrubber, GuardrailsHttpScrubber, Scrubber

    s = Settings()
    scrubber: Scrubber
    if s.guardrails_url:
        scrubber = GuardrailsHttpScrubber(s.guardrails_url)
    elif require_guardrails:
        _fail("TIERWISE_DISTILL_GUARDRAILS_URL is not set and --require-guardrails refuses the regex fallback")
    else:
        typer.echo("warning: guardrails not configured; scrubbing with the regex fallback (no names/addresses)",
                   err=True)
        scrubber = FallbackRegexScrubber()
    cfg = BuildConfig(tasks=task, eval_fraction=eval_fraction, seed=seed)
    _out(build_dataset(exports, out, scrubber, config=cfg, ledger=ledger, guard=guard))


@app.command()
def train(config: Path, dataset_dir: Path, out: Path,
          checkpoint_url: Annotated[str | None, typer.Option(help="mirror checkpoints (s3://…)")] = None) -> None:
    """Train a LoRA/QLoRA adapter (resumes from OUT/checkpoints). Needs the `train` extra."""
    from tierwise_distill.config import TrainConfig
    from tierwise_distill.train import train as run

    s = Settings()
    client = None
    if checkpoint_url and checkpoint_url.startswith("s3://"):
        import boto3

        client = boto3.client("s3", endpoint_url=s.s3_endpoint_url, region_name=s.aws_region)
    summary = run(TrainConfig.load(config), dataset_dir, out, checkpoint_url=checkpoint_url, s3_client=client)
    _out(summary)


@app.command()
def gate(base_model: Path, candidate: Path, dataset_dir: Path, report_out: Path,
         production: Annotated[str | None, typer.Option(help="registry ref of the current adapter, e.g. billing@prod")] = None,
         margin: float = 0.05, guard_tolerance: float = 0.0, min_eval_examples: int = 8,
         max_new_tokens: int = 16, registry: RegistryOpt = None) -> None:
    """Score candidate vs base vs production on the eval and guard splits; write the gate report.
    Exit status 2 when the candidate does not pass."""
    from tierwise_distill.evaluate import evaluate
    from tierwise_distill.gate import GateConfig

    prod_path = prod_label = None
    if production:
        r = _registry(registry)
        try:
            pname, pv = r.resolve(production)
        except RegistryError:
            pname = None
        if pname is not None:
            prod_path = r.materialize(pname, pv, Path(Settings().lora_root).resolve())
            prod_label = f"{pname}@v{pv}"
    rep = evaluate(base_model, candidate, dataset_dir, production=prod_path, production_label=prod_label,
                   gate=GateConfig(margin=margin, guard_tolerance=guard_tolerance, min_eval_examples=min_eval_examples),
                   max_new_tokens=max_new_tokens)
    report_out.write_text(json.dumps(rep.to_json(), indent=2, sort_keys=True) + "\n")
    _out(rep.to_json())
    if not rep.passed:
        typer.echo("error: gate failed: " + "; ".join(rep.reasons), err=True)
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
