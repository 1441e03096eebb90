"""Schema truth for every Kubernetes object tierwise emits.

Custom resources are validated against the upstream CRDs vendored in `tierwise/crds/` (the served
version's `openAPIV3Schema`, JSON Schema Draft 7) **plus** an unknown-field check, because those
schemas neither set `additionalProperties: false` nor run on a real API server here (which would
prune a misspelled field silently). Built-in kinds go through `kubernetes-validate` in strict mode;
a kind with no schema anywhere is an error, never a silent pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .crds import all_crds

KUBERNETES_VERSION = "1.34.0"
OBJECT_META_KEYS = {"name", "namespace", "labels", "annotations", "generateName", "finalizers", "ownerReferences"}


@cache
def _crd_validator(group: str, kind: str, version: str) -> tuple[jsonschema.Draft7Validator, dict] | None:
    crd = all_crds().get((group, kind))
    if crd is None:
        return None
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", False):
            schema = v["schema"]["openAPIV3Schema"]
            return jsonschema.Draft7Validator(schema), schema
    raise LookupError(f"{group}/{version} {kind}: version not served by the vendored CRD "
                      f"(served: {[v['name'] for v in crd['spec']['versions'] if v.get('served')]})")


def _unknown_fields(obj: Any, schema: dict, path: str) -> Iterator[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(obj, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in obj.items():
            if props is not None and k in props:
                yield from _unknown_fields(v, props[k], f"{path}.{k}")
            elif isinstance(extra, dict):
                yield from _unknown_fields(v, extra, f"{path}.{k}")
            elif props is not None and extra is not True:
                yield f"{path}.{k}: unknown field (allowed: {', '.join(sorted(props))})"
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(obj):
            yield from _unknown_fields(v, schema["items"], f"{path}[{i}]")


def _is_unresolved(e: jsonschema.ValidationError) -> bool:
    """A Terraform reference (`${...}`) is only known at apply time: its pattern/format cannot be judged."""
    return e.validator in ("pattern", "format", "maxLength", "minLength") and isinstance(e.instance, str) and "${" in e.instance


def validate_object(obj: dict[str, Any]) -> list[str]:
    """All schema errors of one object; empty when valid."""
    api_version = obj.get("apiVersion", "")
    kind = obj.get("kind", "")
    group, _, version = api_version.rpartition("/")
    try:
        found = _crd_validator(group, kind, version)
    except LookupError as e:
        return [str(e)]
    if found is not None:
        validator, schema = found
        errors = [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)
                  if not _is_unresolved(e)]
        errors += list(_unknown_fields({k: v for k, v in obj.items() if k != "metadata"}, schema, ""))
        meta = obj.get("metadata", {})
        errors += [f".metadata.{k}: unknown field" for k in meta if k not in OBJECT_META_KEYS]
        if not meta.get("name"):
            errors.append(".metadata.name: required")
        return errors
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {api_version} {kind}: neither a vendored CRD nor a built-in kind of Kubernetes {KUBERNETES_VERSION}"]
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.caused_by.absolute_path)) if hasattr(e, 'caused_by') else ''}: {e.message}"]
    return []


def iter_manifests(synth_dir: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(stack, terraform address, object) for every kubernetes_manifest in a synth directory."""
    for f in sorted((synth_dir / "stacks").glob("*/cdk.tf.json")):
        doc = json.loads(f.read_text())
        for name, res in sorted(doc.get("resource", {}).get("kubernetes_manifest", {}).items()):
            yield f.parent.name, f"kubernetes_manifest.{name}", res["manifest"]
