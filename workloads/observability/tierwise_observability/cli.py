"""Console scripts.

- `tierwise-report` (also `tierwise report ...` through the tierwise CLI's git-style dispatch):
  `costs` — the dual (tokens + GPU infrastructure) cost report; `snapshot` — record one GPU-usage
  sample from `kubectl get -o json` output.
- `tierwise-observability` (also `tierwise observability ...`): `generate [--facts FILE|-] [--check]` —
  rules, dashboards and scrape configs from the platform's environment exports
  (`tierwise export observability --env NAME`), never from the environment YAML.
"""

from __future__ import annotations

import datetime as dt
import sys
from enum import Enum
from pathlib import Path

import typer

app = typer.Typer(help="tierwise reports", no_args_is_help=True)
obs_app = typer.Typer(help="tierwise observability as code", no_args_is_help=True)


@obs_app.callback()
def _obs() -> None:
    """Rules, dashboards and scrape configs as code."""


class Format(str, Enum):
    text = "text"
    json = "json"
    html = "html"


def _parse_time(s: str, now: dt.datetime) -> dt.datetime:
    """ISO date/time (UTC if no offset) or a relative age like `7d`, `12h`, `30m`."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if s and s[-1] in units and s[:-1].isdigit():
        return now - dt.timedelta(**{units[s[-1]]: int(s[:-1])})
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{s!r}: expected an ISO date/time (2026-01-05T00:00Z) or an age (7d, 12h)") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@app.command()
def costs(
    ledger_s3: list[str] = typer.Option([], "--ledger-s3", help="the durable ledger: s3://<bucket>/<prefix> the "
                                        "router ships to (TIERWISE_ROUTER_LEDGER_S3_BUCKET/_PREFIX)"),
    ledger: list[Path] = typer.Option([], "--ledger", "-l", help="local ledger file(s) or directories (a router's "
                                      "active file + sealed/ segments not shipped yet)"),
    s3_endpoint_url: str | None = typer.Option(None, envvar="AWS_ENDPOINT_URL_S3",
                                               help="S3-compatible endpoint (default: AWS)"),
    s3_region: str | None = typer.Option(None, envvar="AWS_REGION"),
    gpu_usage: list[Path] = typer.Option([], "--gpu-usage", "-g", help="GPU usage samples (JSON lines, gpu-usage/v1)"),
    prices: Path | None = typer.Option(None, help="prices.json (ec2_on_demand.regions.<region>.<type>); "
                                                   "default: policies/prices/prices.json of the checkout"),
    since: str = typer.Option("30d", help="start: ISO time or age (7d, 12h)"),
    until: str | None = typer.Option(None, help="end: ISO time or age; default now"),
    fmt: Format = typer.Option(Format.text, "--format", "-f"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write here instead of stdout"),
    chart: Path | None = typer.Option(None, help="also write the chart as PNG here"),
) -> None:
    """Join token costs (router ledger) with GPU infrastructure costs per team and model."""
    from . import cost_render as r
    from . import costs as c
    from .ledger_source import read_ledger_source, s3_client

    now = dt.datetime.now(dt.UTC)
    start = _parse_time(since, now)
    end = _parse_time(until, now) if until else now
    if end <= start:
        raise typer.BadParameter(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")
    try:
        price_book = c.load_prices(prices)
        client = s3_client(s3_region, s3_endpoint_url) if ledger_s3 else None
        read, source = read_ledger_source(ledger, ledger_s3, start, end, client=client)
        report = c.build_report(read, gpu_usage, price_book, start, end, ledger_source=source)
    except c.InputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if chart is not None:
        r.write_chart_png(report, chart)
    if fmt is Format.json:
        text = r.render_json(report)
    elif fmt is Format.html:
        text = r.render_html(report)
    else:
        text = r.render_text(report)
    if out is not None:
        out.write_text(text)
    else:
        sys.stdout.write(text)


@app.command()
def snapshot(
    nodes: Path = typer.Option(..., help="`kubectl get nodes -o json` output"),
    pods: Path = typer.Option(..., help="`kubectl get pods -A -o json` output"),
    namespaces: Path = typer.Option(..., help="`kubectl get namespaces -o json` output"),
    interval_s: int = typer.Option(300, help="seconds this sample stands for (the recorder's period)"),
    at: str | None = typer.Option(None, help="sample time (ISO); default now"),
) -> None:
    """Print one gpu-usage/v1 sample line per GPU node (append to the usage file every interval)."""
    import json

    from .gpu_snapshot import snapshot_from_kube

    ts = _parse_time(at, dt.datetime.now(dt.UTC)) if at else dt.datetime.now(dt.UTC)
    for rec in snapshot_from_kube(json.loads(nodes.read_text()), json.loads(pods.read_text()),
                                    json.loads(namespaces.read_text()), ts, interval_s):
        typer.echo(json.dumps(rec, sort_keys=True))


@obs_app.command()
def generate(
    facts: list[str] = typer.Option([], "--facts", "-f", help="an export of `tierwise export observability --env NAME`: "
                                    "a file, or - for stdin; repeatable. Default: every "
                                    "workloads/observability/facts/*.json of the checkout"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output root, one folder per environment "
                                    "(default: workloads/observability/generated of the checkout)"),
    check: bool = typer.Option(False, help="exit 1 if the files on disk differ from the generated ones"),
    repo: Path | None = typer.Option(None, help="repository root (default: found from this file or cwd)"),
) -> None:
    """Render Prometheus rules, scrape configs and Grafana dashboards from the platform's environment exports.

    Without --facts: every checked-in export, and folders of environments without one are removed (or, with
    --check, reported). With --facts: those environments' folders only. Exit 2: a missing or invalid export."""
    from .environment import FACTS_DIR, FactsError, all_environments, load, loads, repo_root
    from .generate import render, stale, write

    root = repo or repo_root() or repo_root(Path.cwd())
    if root is None and (not facts or out is None):
        typer.echo("error: no checkout found (needs environments/ and workloads/); pass --repo, or --facts and --out",
                   err=True)
        raise typer.Exit(2)
    if facts.count("-") > 1:
        typer.echo("error: --facts - (stdin) can be given once", err=True)
        raise typer.Exit(2)
    try:
        if facts:
            envs = [loads(sys.stdin.read(), "<stdin>") if f == "-" else load(f) for f in facts]
            only: set[str] | None = {e.name for e in envs}
        else:
            found = all_environments(root)
            if not found:
                raise FactsError(f"{root / FACTS_DIR}: no exports (*.json); write them with "
                                 "`tierwise export observability --env <name> --out ...` (make generate-observability)")
            envs, only = list(found.values()), None
        want = render(envs)
    except FactsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    out_dir = out or root / "workloads" / "observability" / "generated"
    if check:
        bad = stale(want, out_dir, only)
        for p in bad:
            typer.echo(f"stale: {out_dir / p}", err=True)
        if bad:
            raise typer.Exit(1)
        typer.echo("generated files are up to date")
        return
    for p in write(want, out_dir, only):
        typer.echo(str(out_dir / p))
