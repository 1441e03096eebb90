"""`KubernetesObject`: one Kubernetes object emitted as a `kubernetes_manifest` resource.

Every object the stacks emit goes through here, so each is a complete upstream-shaped object
(apiVersion, kind, metadata, spec) that the schema tests can validate from `cdktf.out/` alone.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct
from cdktn_provider_kubernetes.manifest import Manifest

MANAGED_BY = {"app.kubernetes.io/managed-by": "tierwise"}


class KubernetesObject(Construct):
    """Creates one `kubernetes_manifest`. `body` is the full object; managed-by labels are added."""

    def __init__(self, scope: Construct, id: str, *, body: dict[str, Any], field_manager: str = "tierwise") -> None:
        super().__init__(scope, id)
        meta = dict(body.get("metadata", {}))
        meta["labels"] = {**MANAGED_BY, **meta.get("labels", {})}
        self.body = {**body, "metadata": meta}
        self.manifest = Manifest(self, "object", manifest=self.body, field_manager={"name": field_manager})

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]
