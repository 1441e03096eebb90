"""`HelmChart`: one pinned upstream Helm chart release (chart, repository and exact version required)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct
from cdktn_provider_helm.release import Release

_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class HelmChartProps:
    release_name: str
    chart: str
    repository: str
    #: Exact chart version: ranges are refused, so a plan never picks up an unreviewed chart.
    version: str
    namespace: str
    values: dict[str, Any] = field(default_factory=dict)
    create_namespace: bool = True
    #: Wait for resources to become ready before Terraform continues (CRDs for later stacks).
    wait: bool = True
    timeout_s: int = 900


class HelmChart(Construct):
    """Creates one `helm_release` with its values rendered as deterministic JSON (valid YAML)."""

    def __init__(self, scope: Construct, id: str, *, props: HelmChartProps) -> None:
        super().__init__(scope, id)
        if not _SEMVER.match(props.version):
            raise ValueError(f"HelmChart {props.chart}: version must be an exact semver like '1.8.1', got {props.version!r}")
        self.release = Release(
            self, "release", name=props.release_name, chart=props.chart, repository=props.repository, version=props.version,
            namespace=props.namespace, create_namespace=props.create_namespace, atomic=True, wait=props.wait,
            timeout=props.timeout_s, values=[json.dumps(props.values, sort_keys=True)] if props.values else None,
        )
