"""The tierwise policy engine: load a synth dir once, index it, run explicit check lists over it.

Checks never see the Python constructs, only the synthesized Terraform JSON (`cdktf.out/`), the way
Terraform will. A check is a class with a `meta` (`CheckMeta`) and `run(index) -> Iterable[Result]`.
An exception inside a check becomes a FAIL result ("check error"), never a silent pass (STYLE §6).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
PASS, FAIL, UNKNOWN, NOT_APPLICABLE, SUPPRESSED = "PASS", "FAIL", "UNKNOWN", "NOT_APPLICABLE", "SUPPRESSED"
REF = re.compile(r"\$\{")


class InputError(Exception):
    """The synth dir is missing, unreadable or not a tierwise synth output (exit 2)."""


@dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    severity: str
    categories: tuple[str, ...]
    resource_types: tuple[str, ...]
    rationale: str
    fix: str
    #: One line for `tierwise policy --list`: what the check protects.
    protects: str
    #: CRITICAL checks are never suppressible (STYLE §6).
    unsuppressible: bool = False

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.id}: severity {self.severity!r} not in {SEVERITIES}")
        if not re.fullmatch(r"TW-[A-Z]+-\d{3}", self.id):
            raise ValueError(f"check id {self.id!r} must look like TW-<DOMAIN>-<NNN>")


@dataclass
class Result:
    check_id: str
    status: str
    address: str  # "<stack>/<type>.<name>" or "<stack>/kubernetes_manifest.<name>"
    message: str
    path: str = ""  # construct path from the "//" metadata
    finding: str = ""  # granular finding id: reported as CHECK[finding]
    severity: str = ""
    title: str = ""
    fix: str = ""
    source: str = "tierwise"  # or "checkov"
    file: str = ""
    suppression: dict | None = None

    @property
    def full_id(self) -> str:
        return f"{self.check_id}[{self.finding}]" if self.finding else self.check_id

    def as_dict(self) -> dict:
        return {
            "check_id": self.check_id, "finding": self.finding, "severity": self.severity, "title": self.title,
            "status": self.status, "address": self.address, "path": self.path, "file": self.file,
            "source": self.source, "message": self.message, "fix": self.fix,
            "suppression": self.suppression,
        }


class Check(Protocol):
    meta: CheckMeta

    def run(self, index: "Index") -> Iterable[Result]: ...


# --------------------------------------------------------------------------- the document index
@dataclass(frozen=True)
class Resource:
    stack: str
    type: str
    name: str
    body: dict
    file: str

    @property
    def address(self) -> str:
        return f"{self.stack}/{self.type}.{self.name}"

    @property
    def path(self) -> str:
        meta = self.body.get("//", {})
        return (meta.get("metadata", {}) if isinstance(meta, dict) else {}).get("path", "") or self.address

    # Kubernetes objects embedded as kubernetes_manifest
    @property
    def manifest(self) -> dict:
        m = self.body.get("manifest")
        return m if isinstance(m, dict) else {}

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", ""))

    @property
    def k8s_name(self) -> str:
        md = self.manifest.get("metadata")
        return str(md.get("name", "")) if isinstance(md, dict) else ""

    @property
    def namespace(self) -> str:
        md = self.manifest.get("metadata")
        return str(md.get("namespace", "") or "") if isinstance(md, dict) else ""

    @property
    def labels(self) -> dict:
        md = self.manifest.get("metadata")
        lab = md.get("labels") if isinstance(md, dict) else None
        return lab if isinstance(lab, dict) else {}


@dataclass
class Index:
    """Read-only view over every stack of one synth dir. Built once; checks share it."""

    root: Path
    stacks: dict[str, dict]
    meta: dict = field(default_factory=dict)  # tierwise.json
    resources: list[Resource] = field(default_factory=list)
    _by_type: dict[str, list[Resource]] = field(default_factory=dict)
    _by_ref: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    #: Derived views computed once per gate run and shared by checks and reports (e.g. the default cost report).
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for stack, doc in self.stacks.items():
            res = doc.get("resource", {}) if isinstance(doc, dict) else {}
            for rtype, items in (res.items() if isinstance(res, dict) else []):
                for name, body in (items.items() if isinstance(items, dict) else []):
                    if not isinstance(body, dict):
                        continue
                    r = Resource(stack, rtype, name, body, f"stacks/{stack}/cdk.tf.json")
                    self.resources.append(r)
                    self._by_type.setdefault(rtype, []).append(r)
                    self._by_ref[(stack, rtype, name)] = r

    def of_type(self, *types: str) -> list[Resource]:
        return [r for t in types for r in self._by_type.get(t, [])]

    def k8s(self, kind: str, api_group: str | None = None) -> list[Resource]:
        out = []
        for r in self._by_type.get("kubernetes_manifest", []):
            if r.kind != kind:
                continue
            if api_group is not None and str(r.manifest.get("apiVersion", "")).split("/")[0] != api_group:
                continue
            out.append(r)
        return out

    def get(self, stack: str, rtype: str, name: str) -> Resource | None:
        return self._by_ref.get((stack, rtype, name))

    def resolve(self, stack: str, value: Any, rtype: str) -> Resource | None:
        """`${aws_iam_role.NAME.arn}` (same stack) or a cross-stack output named after the resource."""
        if not isinstance(value, str):
            return None
        m = re.search(rf"\$\{{{re.escape(rtype)}\.([A-Za-z0-9_-]+)\.", value)
        if m:
            return self.get(stack, rtype, m.group(1))
        m = re.search(r"cross-stack-output-" + re.escape(rtype) + r"([A-Za-z0-9_-]+?)(arn|id|name)\}", value)
        if m:
            for (s, t, n), r in self._by_ref.items():
                if t == rtype and n == m.group(1):
                    return r
        return None

    def provider_blocks(self, stack: str, provider: str = "aws") -> list[dict]:
        p = self.stacks.get(stack, {}).get("provider", {})
        blocks = p.get(provider, []) if isinstance(p, dict) else []
        if isinstance(blocks, dict):
            blocks = [blocks]
        return [b for b in blocks if isinstance(b, dict)]

    def default_tags(self, r: Resource) -> dict:
        """The `default_tags` of the provider configuration this resource uses (alias-aware)."""
        wanted = r.body.get("provider")
        alias = wanted.split(".", 1)[1] if isinstance(wanted, str) and "." in wanted else None
        for b in self.provider_blocks(r.stack, r.type.split("_", 1)[0]):
            if b.get("alias") == alias:
                dt = b.get("default_tags")
                if isinstance(dt, dict):
                    dt = [dt]
                tags: dict = {}
                for d in dt or []:
                    if isinstance(d, dict) and isinstance(d.get("tags"), dict):
                        tags.update(d["tags"])
                return tags
        return {}

    def effective_tags(self, r: Resource) -> dict:
        """What Terraform's `tags_all` will be: provider default_tags, overridden by the resource's own tags."""
        own = r.body.get("tags")
        return {**self.default_tags(r), **(own if isinstance(own, dict) else {})}


def load_index(synth_dir: Path) -> Index:
    """Load each `stacks/*/cdk.tf.json` once. Raises InputError with what is wrong and the fix."""
    synth_dir = Path(synth_dir)
    if not synth_dir.exists():
        raise InputError(f"synth dir {str(synth_dir)!r} does not exist; run `tierwise synth --env NAME --out {synth_dir}` first")
    if not synth_dir.is_dir():
        raise InputError(f"synth dir {str(synth_dir)!r} is not a directory")
    files = sorted((synth_dir / "stacks").glob("*/cdk.tf.json"))
    if not files:
        raise InputError(f"no stacks/*/cdk.tf.json under {str(synth_dir)!r}; is it a `tierwise synth` output directory?")
    stacks: dict[str, dict] = {}
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read {f}: {e}") from e
        if not isinstance(doc, dict):
            raise InputError(f"{f}: top level is {type(doc).__name__}, expected a JSON object")
        stacks[f.parent.name] = doc
    meta: dict = {}
    mf = synth_dir / "tierwise.json"
    if mf.exists():
        try:
            loaded = json.loads(mf.read_text())
            meta = loaded if isinstance(loaded, dict) else {}
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read {mf}: {e}") from e
    return Index(root=synth_dir, stacks=stacks, meta=meta)


def run_checks(index: Index, checks: Iterable[Check]) -> list[Result]:
    out: list[Result] = []
    for check in checks:
        m = check.meta
        try:
            results = list(check.run(index))
        except Exception as e:  # noqa: BLE001 - a crashing check is a failure, never a pass
            results = [Result(m.id, FAIL, "(engine)", f"check error: {type(e).__name__}: {e}")]
        for r in results:
            r.severity = r.severity or m.severity
            r.title = r.title or m.title
            r.fix = r.fix or m.fix
        out.extend(results)
    return out


# --------------------------------------------------------------------------- shared helpers
def is_ref(value: Any) -> bool:
    return isinstance(value, str) and bool(REF.search(value))


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_statements(doc: Any) -> tuple[list[dict] | None, str]:
    """Statements of an IAM policy JSON string. (None, why) when it cannot be read (e.g. a `${...}` expression)."""
    if isinstance(doc, dict):
        parsed = doc
    elif isinstance(doc, str):
        s = doc.strip()
        if s.startswith("${") and s.endswith("}"):
            return None, "policy is a Terraform expression, unknown until plan"
        try:
            parsed = json.loads(s)
        except json.JSONDecodeError as e:
            return None, f"policy is not valid JSON ({e})"
    else:
        return None, f"policy has type {type(doc).__name__}"
    if not isinstance(parsed, dict):
        return None, "policy document is not a JSON object"
    stmts = parsed.get("Statement", [])
    stmts = [stmts] if isinstance(stmts, dict) else stmts
    if not isinstance(stmts, list):
        return None, "Statement is neither an object nor a list"
    return [s for s in stmts if isinstance(s, dict)], ""


def result(meta: CheckMeta, status: str, r: Resource | None, message: str, finding: str = "", address: str = "") -> Result:
    return Result(meta.id, status, address or (r.address if r else "(synth)"), message,
                  path=r.path if r else "", finding=finding, file=r.file if r else "")
