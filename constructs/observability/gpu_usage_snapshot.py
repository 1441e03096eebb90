"""`GpuUsageSnapshot`: a CronJob that records one `gpu-usage/v1` sample per GPU node for the dual cost report.

Every period it lists nodes, pods and namespaces from the Kubernetes API (read-only, nothing else) and runs
`tierwise-report snapshot` from the observability image, which prints one JSON line per GPU node to stdout
(collected by the cluster's log pipeline, the input of `tierwise report costs --gpu-usage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from ..kubernetes import KubernetesObject
from ..serving.pod_defaults import IMAGE_PULL_POLICY, container_security, labels, pod_security, resources

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DATA_DIR = "/tmp/kube"
#: Lists the three collections `tierwise-report snapshot` reads, exactly as `kubectl get -o json` would.
FETCH_SCRIPT = f"""import os, ssl, urllib.request
sa = "{SA_DIR}"
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
token = open(sa + "/token").read().strip()
api = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
os.makedirs("{DATA_DIR}", exist_ok=True)
for name in ("nodes", "pods", "namespaces"):
    req = urllib.request.Request(api + "/api/v1/" + name, headers={{"Authorization": "Bearer " + token}})
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r, open("{DATA_DIR}/%s.json" % name, "wb") as f:
        f.write(r.read())
"""


@dataclass(frozen=True)
class GpuUsageSnapshotProps:
    namespace: str
    #: The observability image (`workloads/observability/Dockerfile`, entry point `tierwise-report`).
    image: str
    name: str = "gpu-usage-snapshot"
    #: Cron schedule; the sample interval passed to the tool is derived from it (every N minutes only).
    every_minutes: int = 5
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


class GpuUsageSnapshot(Construct):
    """Creates a `ServiceAccount` (no AWS role: it calls no AWS API), a `ClusterRole` allowing only `list` on
    nodes, pods and namespaces, its `ClusterRoleBinding`, and a `CronJob` (no overlap, restricted pod, the
    API token mounted as a short-lived projected volume instead of the automounted one)."""

    def __init__(self, scope: Construct, id: str, *, props: GpuUsageSnapshotProps) -> None:
        super().__init__(scope, id)
        p = props
        if not 1 <= p.every_minutes <= 59 or 60 % p.every_minutes:
            raise ValueError(f"GpuUsageSnapshot: every_minutes must divide 60, got {p.every_minutes}")
        self.labels = labels(p.name, "usage-snapshot")
        self.selector = {"app.kubernetes.io/name": p.name}
        meta = {"name": p.name, "labels": self.labels}
        sa = KubernetesObject(self, "service-account", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {**meta, "namespace": p.namespace},
            "automountServiceAccountToken": False})
        role = KubernetesObject(self, "cluster-role", body={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {**meta, "name": f"tierwise:{p.name}"},
            "rules": [{"apiGroups": [""], "resources": ["nodes", "pods", "namespaces"], "verbs": ["list"]}]})
        binding = KubernetesObject(self, "cluster-role-binding", body={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {**meta, "name": f"tierwise:{p.name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"tierwise:{p.name}"},
            "subjects": [{"kind": "ServiceAccount", "name": p.name, "namespace": p.namespace}]})
        binding.manifest.node.add_dependency(role.manifest)
        files = " ".join(f"--{n} {DATA_DIR}/{n}.json" for n in ("nodes", "pods", "namespaces"))
        container = {
            "name": "snapshot", "image": p.image, "imagePullPolicy": IMAGE_PULL_POLICY,
            "command": ["/bin/sh", "-c"],
            "args": [f'python -c "$FETCH" && exec tierwise-report snapshot {files} --interval-s {p.every_minutes * 60}'],
            "env": [{"name": "FETCH", "value": FETCH_SCRIPT}],
            "resources": resources("100m", "256Mi", "500m"), "securityContext": container_security(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "api-token", "mountPath": SA_DIR, "readOnly": True}]}
        pod_spec: dict[str, Any] = {
            "serviceAccountName": p.name, "automountServiceAccountToken": False, "enableServiceLinks": False,
            "restartPolicy": "Never", "securityContext": pod_security(), "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        {"name": "api-token", "projected": {"defaultMode": 0o440, "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]}
        if p.node_selector:
            pod_spec["nodeSelector"] = dict(p.node_selector)
        if p.tolerations:
            pod_spec["tolerations"] = list(p.tolerations)
        self.cron_job = KubernetesObject(self, "cron-job", body={
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {**meta, "namespace": p.namespace},
            "spec": {"schedule": f"*/{p.every_minutes} * * * *", "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 120,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 1, "activeDeadlineSeconds": p.every_minutes * 60 - 30,
                                              "ttlSecondsAfterFinished": 3600,
                                              "template": {"metadata": {"labels": self.labels}, "spec": pod_spec}}}}})
        for d in (sa, binding):
            self.cron_job.manifest.node.add_dependency(d.manifest)
