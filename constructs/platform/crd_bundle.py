"""`CrdBundle`: upstream CustomResourceDefinitions installed as-is from the vendored copies.

For APIs with no upstream Helm chart (Gateway API, the Inference Extension's InferencePool).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from tierwise.crds import crd_file

from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class CrdBundleProps:
    #: Paths relative to the vendored CRD folder, e.g. `gateway-api/gateway.networking.k8s.io_gateways.yaml`.
    files: list[str]


class CrdBundle(Construct):
    """Creates one `apiextensions.k8s.io/v1` CustomResourceDefinition object per file."""

    def __init__(self, scope: Construct, id: str, *, props: CrdBundleProps) -> None:
        super().__init__(scope, id)
        self.crds = []
        for f in props.files:
            doc = crd_file(f)
            doc.pop("status", None)
            self.crds.append(KubernetesObject(self, doc["metadata"]["name"], body=doc))
