"""One environment's facts, as the platform exports them: `tierwise export observability --env NAME`.

Observability never imports the CDK package (`tierwise`) and never reads `environments/<name>.yaml`:
the platform's one loader (pydantic, `tierwise.config`) validates the file and fills its defaults, and
the export carries the result as JSON (teams and budgets, models and adapters, pools, queue targets,
the router's saturation threshold, the monitoring namespace). This module checks a document against
the export's JSON Schema, generated from the exporting model and committed beside this file
(`tierwise export observability --schema` rewrites it), and maps it onto frozen dataclasses. It holds
no defaults and no rules of its own: a missing, mistyped or unknown field, or another
`schema_version`, fails with the field's path.

The checked-in exports live in `workloads/observability/facts/<env>.json` (`make generate-observability`
rewrites them, then the generated files).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_RESOURCE = "observability-facts.schema.json"
#: Where the checked-in exports live, relative to the checkout root.
FACTS_DIR = Path("workloads") / "observability" / "facts"
EXPORT_HINT = "`tierwise export observability --env <name>`"


class FactsError(ValueError):
    """Not a valid export: the message names the source and each bad field's path."""


@dataclass(frozen=True)
class TeamSpec:
    name: str
    cost_center: str
    namespaces: tuple[str, ...]
    monthly_budget_usd: float
    tokens_per_day: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    pool: str
    adapters: tuple[str, ...]


@dataclass(frozen=True)
class ObsEnvironment:
    name: str
    region: str
    teams: tuple[TeamSpec, ...]
    models: tuple[ModelSpec, ...]
    gpu_pools: tuple[str, ...]
    bedrock_models: tuple[str, ...]
    queue_target_waiting: int
    #: The router's `routing.saturation_waiting`: it skips a model replica with more requests waiting.
    saturation_waiting: int
    #: Where Prometheus and the dashboard ConfigMap live.
    monitoring_namespace: str


def schema() -> dict[str, Any]:
    """The export's JSON Schema, as committed with this package."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> tuple[int, Draft202012Validator]:
    """The committed schema's version and its validator, read and built once per process."""
    s = schema()
    return s["properties"]["schema_version"]["const"], Draft202012Validator(s)


def _where(e: ValidationError) -> str:
    out = ""
    for part in e.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    if e.validator == "required":  # the library reports a missing key at its parent: name the key itself
        m = re.match(r"^'(.+)' is a required property$", e.message)
        if m:
            return f"{out}.{m[1]}" if out else m[1]
    return out or "(top level)"


def _message(e: ValidationError) -> str:
    return "required, missing" if e.validator == "required" else e.message


def from_facts(doc: Any, source: str = "<facts>") -> ObsEnvironment:
    """Validate one export against the committed schema, then map it (no defaults, no other checks)."""
    version, validator = _validator()
    if isinstance(doc, dict) and "schema_version" in doc and doc["schema_version"] != version:
        raise FactsError(f"{source}: schema_version: this tierwise-observability reads version {version}, got "
                         f"{doc['schema_version']!r}; export again with the tierwise of the same checkout ({EXPORT_HINT})")
    errors = sorted(validator.iter_errors(doc), key=lambda e: (_where(e), e.message))
    if errors:
        n = len(errors)
        lines = [f"  {_where(e)}: {_message(e)}" for e in errors]
        raise FactsError(f"{source}: {n} invalid field{'s' if n > 1 else ''} (expected the output of {EXPORT_HINT})\n"
                         + "\n".join(lines))
    return ObsEnvironment(
        name=doc["environment"],
        region=doc["region"],
        teams=tuple(TeamSpec(name=t["name"], cost_center=t["cost_center"], namespaces=tuple(t["namespaces"]),
                             monthly_budget_usd=float(t["monthly_budget_usd"]), tokens_per_day=int(t["tokens_per_day"]))
                    for t in doc["teams"]),
        models=tuple(ModelSpec(name=m["name"], pool=m["pool"], adapters=tuple(m["adapters"])) for m in doc["models"]),
        gpu_pools=tuple(doc["gpu_pools"]),
        bedrock_models=tuple(doc["bedrock_model_ids"]),
        queue_target_waiting=int(doc["queue_target_waiting"]),
        saturation_waiting=int(doc["router_saturation_waiting"]),
        monitoring_namespace=doc["monitoring_namespace"],
    )


def loads(text: str, source: str = "<facts>") -> ObsEnvironment:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise FactsError(f"{source}: not JSON ({e}); expected the output of {EXPORT_HINT}") from None
    return from_facts(doc, source)


def load(path: str | Path) -> ObsEnvironment:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FactsError(f"{p}: cannot read ({e})") from None
    return loads(text, str(p))


def repo_root(start: Path | None = None) -> Path | None:
    """The checkout root (has `environments/` and `workloads/`), searched upwards; None in an image."""
    here = (start or Path(__file__)).resolve()
    for p in [here, *here.parents]:
        if (p / "environments").is_dir() and (p / "workloads").is_dir():
            return p
    return None


def all_environments(root: Path) -> dict[str, ObsEnvironment]:
    """Every checked-in export under `<root>/workloads/observability/facts/`, by environment name."""
    out: dict[str, ObsEnvironment] = {}
    for p in sorted((root / FACTS_DIR).glob("*.json")):
        env = load(p)
        if env.name != p.stem:
            raise FactsError(f"{p}: environment: {env.name!r} does not match the file name; write each export to "
                             f"facts/<environment>.json")
        out[env.name] = env
    return out
