"""Vendored upstream CRDs (see README.md): loaded by kind for installation and schema validation."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

CRD_DIR = Path(__file__).parent


@cache
def all_crds() -> dict[tuple[str, str], dict]:
    """(group, kind) -> CRD document, for every vendored CRD file."""
    out: dict[tuple[str, str], dict] = {}
    for path in sorted(CRD_DIR.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            out[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return out


def crd_file(relative: str) -> dict:
    return yaml.safe_load((CRD_DIR / relative).read_text(encoding="utf-8"))
