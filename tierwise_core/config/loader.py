"""Load an environment file into the typed model, or fail with one readable message.

`load_environment("dev")` looks in `environments/`; a path loads that file. Errors name the file,
the YAML field path (`teams[1].gpu_quota`), the reason and the value seen.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from .environment import Environment


class ConfigError(Exception):
    """A bad environment file. `str(err)` is the message a user sees."""


def environments_dir() -> Path:
    """The `environments/` folder of the checkout the CLI runs from (cwd first, then the repo)."""
    cwd = Path.cwd() / "environments"
    if cwd.is_dir():
        return cwd
    return Path(__file__).resolve().parents[2] / "environments"


def resolve(env: str) -> Path:
    p = Path(env)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return environments_dir() / f"{env}.yaml"


def list_environments() -> list[Path]:
    return sorted(environments_dir().glob("*.yaml"))


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("full", "mig", "timeslice") and out:
            continue  # discriminated-union tag: not a YAML key
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_environment(env: str | Path) -> Environment:
    path = resolve(str(env))
    if not path.is_file():
        known = ", ".join(p.stem for p in list_environments()) or "none"
        raise ConfigError(f"{path}: no such environment file (known environments: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of environment fields, got {type(raw).__name__}")
    try:
        return Environment.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors(include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            seen = err.get("input")
            shown = "" if isinstance(seen, (dict, list)) or err["type"] == "missing" else f" (got {seen!r})"
            lines.append(f"  {_loc(err['loc'])}: {msg}{shown}")
        n = len(lines)
        raise ConfigError(f"{path}: {n} invalid field{'s' if n > 1 else ''}\n" + "\n".join(lines)) from None
