"""`S3Mount`: a read-only Mountpoint for Amazon S3 volume of one bucket prefix, bound to one claim.

The Mountpoint CSI driver (v2, `s3.csi.aws.com`) streams objects on demand, so a model server starts
without copying its weights to local disk. With `authenticationSource: pod` the mount uses the
credentials of the pod's own service account (its Pod Identity role), not the node's.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject
from .pod_defaults import DEFAULT_UID

DRIVER = "s3.csi.aws.com"


@dataclass(frozen=True)
class S3MountProps:
    #: Name of the PersistentVolume (cluster-scoped) and of its claim.
    name: str
    namespace: str
    bucket_name: str
    #: Key prefix mounted as the volume root (no leading or trailing slash).
    prefix: str
    #: UID/GID the files appear owned by (the model server's non-root user).
    uid: int = DEFAULT_UID


class S3Mount(Construct):
    """Creates a `PersistentVolume` (CSI `s3.csi.aws.com`, ReadOnlyMany, read-only mount options) and the
    `PersistentVolumeClaim` pre-bound to it."""

    def __init__(self, scope: Construct, id: str, *, props: S3MountProps) -> None:
        super().__init__(scope, id)
        p = props
        if p.prefix.startswith("/") or p.prefix.endswith("/") or not p.prefix:
            raise ValueError(f"S3Mount {p.name}: prefix must be a non-empty key prefix without leading/trailing '/', got {p.prefix!r}")
        self.volume = KubernetesObject(self, "volume", body={
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": p.name},
            "spec": {
                "capacity": {"storage": "1Ti"},  # required by the API; Mountpoint ignores it
                "accessModes": ["ReadOnlyMany"], "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                "claimRef": {"namespace": p.namespace, "name": p.name},
                "mountOptions": ["read-only", f"prefix {p.prefix}/", f"uid={p.uid}", f"gid={p.uid}", "allow-other"],
                "csi": {"driver": DRIVER, "volumeHandle": p.name,
                        "volumeAttributes": {"bucketName": p.bucket_name, "authenticationSource": "pod"}},
            }})
        self.claim = KubernetesObject(self, "claim", body={
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": p.name, "namespace": p.namespace},
            "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": p.name,
                     "resources": {"requests": {"storage": "1Ti"}}}})
        self.claim.manifest.node.add_dependency(self.volume.manifest)

    @property
    def claim_name(self) -> str:
        return self.claim.name
