"""The `tierwise` command line.

    tierwise synth [--env NAME|PATH] [--out DIR]   synthesize one environment (exit 2: bad config)
    tierwise envs                                  list environments
    tierwise doctor [--env NAME|PATH] [-d DIR]     releases, images, Bedrock ids and deploy checks before `cdktn deploy`
    tierwise export observability --env NAME|PATH  the validated facts observability renders from, as JSON (--schema)
    tierwise policy ...  /  tierwise cost ...      the pull-request gate (see `tierwise policy --help`)
    tierwise <word> ...                            runs `tierwise-<word>` (workload CLIs: guard, adapters, ...)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

from .config import ConfigError, list_environments, load_environment

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="tierwise: agentic-AI platform blueprint on EKS.")

EXIT_OK, EXIT_FAIL, EXIT_CONFIG = 0, 1, 2


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _load_or_exit(env: str):
    """The environment, or exit 2 with the loader's message (field path and reason)."""
    try:
        return load_environment(env)
    except ConfigError as e:
        _err(str(e))
        raise typer.Exit(EXIT_CONFIG)


def _prefer_repo_node() -> None:
    """jsii runs the provider bindings under `node` from PATH: prefer the repo-local Node 22 that
    `make setup` installs (pinned by package-lock.json) over an older system Node."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        bin_dir = base / "node_modules" / ".bin"
        if (bin_dir / "node").exists():
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
            break
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")


@app.command()
def synth(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name (environments/NAME.yaml) or a path to a YAML file."),
    out: Path = typer.Option(Path("cdktf.out"), "--out", "-o", help="Output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Synthesize every stack of one environment into OUT/stacks/<stack>/cdk.tf.json."""
    environment = _load_or_exit(env)
    _prefer_repo_node()
    from .app import summarize, synth as do_synth
    from .summary import capacity_lines

    try:
        do_synth(environment, out)
    except ValueError as e:  # a bad combination the model let through, or a forked environment never generated
        _err(f"{env}: {e}")
        raise typer.Exit(EXIT_CONFIG)
    if quiet:
        return
    rows = summarize(out)
    typer.echo(f"synthesized environment '{environment.name}' into {out}/")
    typer.echo(f"  {'stack':<22}{'resources':>10}{'k8s objects':>13}")
    for r in rows:
        typer.echo(f"  {r.name:<22}{r.resources:>10}{r.kubernetes_objects:>13}")
    typer.echo(f"  {'total':<22}{sum(r.resources for r in rows):>10}{sum(r.kubernetes_objects for r in rows):>13}")
    for line in capacity_lines(environment):
        typer.echo(line)


@app.command()
def envs() -> None:
    """List the environments in environments/ and whether each one loads."""
    for path in list_environments():
        try:
            e = load_environment(path)
            typer.echo(f"{path.stem:<12} {e.region:<12} {len(e.availability_zones)} AZs  pools={len(e.gpu_pools)} "
                       f"models={len(e.models)} teams={len(e.teams)}")
        except ConfigError as ex:
            typer.echo(f"{path.stem:<12} INVALID: {str(ex).splitlines()[0]}")


@app.command()
def doctor(
    env: str = typer.Option(None, "--env", "-e", help="Synthesize this environment (name or path) into a temporary dir first."),
    synth_dir: Path = typer.Option(None, "--synth-dir", "-d", help="An existing `tierwise synth` output (default cdktf.out)."),
) -> None:
    """What a reviewer reads before `cdktn deploy`: each Helm release with its chart and app version and values check,
    each image with how nodes pull it, the Bedrock ids as Bedrock invokes them, and the deploy checks. Exit 1 on any
    problem, 2 on bad input."""
    import tempfile

    from .doctor import diagnose

    tmp = None
    if env is not None:
        environment = _load_or_exit(env)
        _prefer_repo_node()
        from .app import synth as do_synth

        tmp = tempfile.TemporaryDirectory(prefix="tierwise-doctor-")
        synth_dir = Path(tmp.name) / environment.name
        do_synth(environment, synth_dir)
    synth_dir = synth_dir or Path("cdktf.out")
    if not (synth_dir / "stacks").is_dir():
        _err(f"{synth_dir}: not a synth output (no stacks/); run `tierwise synth` or pass --env")
        raise typer.Exit(EXIT_CONFIG)
    try:
        rep = diagnose(synth_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()
    typer.echo("\n".join(rep.lines))
    raise typer.Exit(EXIT_FAIL if rep.failures else EXIT_OK)


export_app = typer.Typer(no_args_is_help=True, help="Validated environment facts as JSON, for tools that do not import tierwise.")
app.add_typer(export_app, name="export")


@export_app.command("observability")
def export_observability(
    env: str = typer.Option(None, "--env", "-e", help="Environment name (environments/NAME.yaml) or a path to a YAML file."),
    out: Path = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
    schema: bool = typer.Option(False, "--schema", help="Print the export's JSON Schema instead (committed in the "
                                "observability package, which validates every export against it)."),
) -> None:
    """The facts `tierwise-observability generate` renders rules, scrape configs and dashboards from: teams, budgets,
    models, pools, queue targets, loaded and defaults-filled by the one environment loader. Exit 2: bad config."""
    from .exports import observability_facts_json, observability_schema_json

    if (env is None) == (not schema):
        _err("pass exactly one of --env NAME|PATH (the facts) and --schema (their JSON Schema)")
        raise typer.Exit(EXIT_CONFIG)
    text = observability_schema_json() if schema else observability_facts_json(_load_or_exit(env))
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


@app.command(hidden=True, name="app")
def cdktn_app() -> None:
    """Entry point for `cdktn synth|diff|deploy` (cdktf.json). Environment from TIERWISE_ENV (default dev)."""
    # The one place an environment variable picks the environment: the cdktn CLI passes no arguments.
    name = os.environ.get("TIERWISE_ENV", "dev")
    try:
        environment = load_environment(name)
    except ConfigError as e:
        _err(str(e))
        raise typer.Exit(EXIT_CONFIG)
    _prefer_repo_node()
    from .app import build_app, write_facts

    app_ = build_app(environment)
    app_.synth()
    write_facts(environment, Path(app_.outdir))  # the gate reads it from `cdktn synth` output too


def _register_optional() -> None:
    """Sub-command groups that live in their own modules (policy gate, cost)."""
    try:
        from tierwise.policies.cli import register
    except ImportError:
        return
    register(app)


def main() -> None:
    argv = sys.argv[1:]
    _register_optional()
    known = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands} | {
        g.name for g in app.registered_groups if g.name}
    if argv and not argv[0].startswith("-") and argv[0] not in known:
        # git-style plugins: `tierwise guard review` -> `tierwise-guard review`
        exe = f"tierwise-{argv[0]}"
        here = Path(sys.argv[0]).resolve().parent
        candidates = [here / exe, *sorted(Path.cwd().glob(f".venv-*/bin/{exe}")), shutil.which(exe)]
        for c in candidates:
            if c and Path(c).is_file() and os.access(c, os.X_OK):
                os.execv(str(c), [str(c), *argv[1:]])
        _err(f"unknown command {argv[0]!r}; no executable {exe!r} found (is its workload installed?)")
        sys.exit(EXIT_CONFIG)
    app(prog_name="tierwise")
