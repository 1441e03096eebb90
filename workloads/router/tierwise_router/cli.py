"""`tierwise-router` (also `tierwise router ...`): serve, hash an API key, check a config, read the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="tierwise tiered router", no_args_is_help=True)


@app.command()
def serve(host: str = "0.0.0.0", port: int = 8080, workers: int = 1) -> None:
    """Run the router (settings from TIERWISE_ROUTER_* env vars)."""
    import uvicorn

    uvicorn.run("tierwise_router.app:create_app", factory=True, host=host, port=port, workers=workers,
                loop="uvloop", http="httptools", access_log=False, log_level="warning")


@app.command("hash-key")
def hash_key(key: str = typer.Argument(..., help="the API key to hash for api_key_sha256")) -> None:
    """Print the sha256 form of an API key, for the config file."""
    from .config import hash_api_key

    typer.echo(hash_api_key(key))


@app.command("check-config")
def check_config(path: Path) -> None:
    """Validate a router config file; exits 1 with the failing field paths."""
    from pydantic import ValidationError

    from .config import load_config

    try:
        cfg = load_config(path)
    except ValidationError as e:
        for err in e.errors():
            typer.echo(f"{path}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ok: {len(cfg.teams)} teams, {len(cfg.models)} models")


@app.command()
def ledger(paths: list[Path] = typer.Argument(..., help="ledger files or directories (active file + sealed/)")) -> None:
    """Summarise a local token-cost ledger by team and model (torn or corrupt lines are counted, not
    read; an entry seen twice is counted once)."""
    from tierwise_ledger import read_local

    from .config import nano_to_usd_str

    read = read_local(paths)
    entries, bad = read.entries, read.corrupt_lines
    agg: dict[tuple[str, str], list[int]] = {}
    for e in entries:
        a = agg.setdefault((e["team"], e["model"]), [0, 0, 0, 0])
        a[0] += 1
        a[1] += e["prompt_tokens"]
        a[2] += e["completion_tokens"]
        a[3] += e["cost_nano_usd"]
    rows = [{"team": t, "model": m, "calls": a[0], "prompt_tokens": a[1], "completion_tokens": a[2],
             "cost_usd": nano_to_usd_str(a[3])} for (t, m), a in sorted(agg.items())]
    typer.echo(json.dumps({"entries": len(entries), "skipped_corrupt_lines": bad, "duplicates": read.duplicates,
                           "by_team_model": rows}, indent=2))
