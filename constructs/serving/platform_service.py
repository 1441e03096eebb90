"""`PlatformService`: one stateless platform service (router, RAG, guardrails) on the system nodes.

Its own ServiceAccount bound to its own Pod Identity role (only the statements given), configuration
from a ConfigMap generated from the environment file, secrets referenced by name only, and an HPA
and PDB so a node drain or a traffic burst never takes it to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from ..iam import Statement
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps
from ..kubernetes import KubernetesObject
from .pod_defaults import IMAGE_PULL_POLICY, container_security, labels, pod_security, resources, selector, spread

CONFIG_DIR = "/etc/tierwise"


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable read from a key of a Secret created at deploy time (never in YAML)."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class PlatformServiceProps:
    name: str
    namespace: str
    component: str
    image: str
    port: int
    #: CPU request of the service container.
    cpu: str
    memory_mib: int
    min_replicas: int
    max_replicas: int
    role_name: str
    account_id: str
    cluster_name: str
    cluster_arn: str
    #: IAM statements of the service's role; a role without a policy when empty.
    statements: list[Statement] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secret_env: list[SecretEnv] = field(default_factory=list)
    #: Files rendered into the service's ConfigMap, mounted read-only at /etc/tierwise; none when empty.
    config_files: dict[str, str] = field(default_factory=dict)
    #: Secrets (created at deploy time) mounted read-only at /etc/tierwise/secrets/<name>.
    secret_mounts: list[str] = field(default_factory=list)
    #: Containers that run before the service (e.g. render a config); they see the same mounts.
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    #: Create an autoscaling/v2 HPA on CPU. Off when a KEDA ScaledObject scales this Deployment.
    create_hpa: bool = True
    target_cpu_percent: int = 70
    #: CPU limit of the service container; equal to `cpu` when omitted (Guaranteed QoS with the memory limit).
    cpu_limit: str | None = None
    liveness_path: str = "/healthz"
    readiness_path: str = "/readyz"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


class PlatformService(Construct):
    """Creates a `ServiceAccount`, its `WorkloadIdentity`, a `ConfigMap` (when config files are given), a
    `Deployment` (non-root high UID, read-only root filesystem, all capabilities dropped, RuntimeDefault seccomp,
    CPU and memory limits, image pulled with `Always`, probes), a `Service`, a `HorizontalPodAutoscaler`
    (unless KEDA scales it) and a `PodDisruptionBudget`."""

    def __init__(self, scope: Construct, id: str, *, props: PlatformServiceProps) -> None:
        super().__init__(scope, id)
        p = props
        if not 1 <= p.min_replicas <= p.max_replicas:
            raise ValueError(f"PlatformService {p.name}: need 1 <= min_replicas <= max_replicas, got {p.min_replicas}/{p.max_replicas}")
        self.props = p
        self.labels = labels(p.name, p.component)
        self.selector = selector(p.name)
        meta = {"namespace": p.namespace, "labels": self.labels}
        sa = KubernetesObject(self, "service-account", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": p.name, **meta}, "automountServiceAccountToken": False})
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=p.role_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=p.name, statements=p.statements, tags={"tierwise.io/workload": p.name}))
        volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
        mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
        deps = [sa]
        if p.config_files:
            cm = KubernetesObject(self, "config", body={
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": p.name, **meta}, "data": dict(sorted(p.config_files.items()))})
            deps.append(cm)
            volumes.append({"name": "config", "configMap": {"name": p.name}})
            mounts.append({"name": "config", "mountPath": CONFIG_DIR, "readOnly": True})
        for s in p.secret_mounts:
            volumes.append({"name": f"secret-{s}", "secret": {"secretName": s}})
            mounts.append({"name": f"secret-{s}", "mountPath": f"{CONFIG_DIR}/secrets/{s}", "readOnly": True})
        env = [{"name": k, "value": v} for k, v in sorted(p.env.items())]
        env += [{"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in p.secret_env]
        container = {
            "name": p.component, "image": p.image, "imagePullPolicy": IMAGE_PULL_POLICY, "env": env,
            "ports": [{"name": "http", "containerPort": p.port, "protocol": "TCP"}],
            "resources": resources(p.cpu, f"{p.memory_mib}Mi", p.cpu_limit),
            "volumeMounts": mounts, "securityContext": container_security(),
            "startupProbe": {"httpGet": {"path": p.liveness_path, "port": "http"}, "periodSeconds": 5, "failureThreshold": 60},
            "readinessProbe": {"httpGet": {"path": p.readiness_path, "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"httpGet": {"path": p.liveness_path, "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        }
        inits = [{"imagePullPolicy": IMAGE_PULL_POLICY, "securityContext": container_security(), "volumeMounts": mounts,
                  "resources": resources("100m", "256Mi", "500m"), **c}
                 for c in p.init_containers]
        pod_spec: dict[str, Any] = {
            "serviceAccountName": p.name, "automountServiceAccountToken": False, "enableServiceLinks": False,
            "securityContext": pod_security(), "terminationGracePeriodSeconds": 30, "containers": [container],
            "volumes": volumes, "topologySpreadConstraints": spread(p.name)}
        if inits:
            pod_spec["initContainers"] = inits
        if p.node_selector:
            pod_spec["nodeSelector"] = dict(p.node_selector)
        if p.tolerations:
            pod_spec["tolerations"] = list(p.tolerations)
        self.deployment = KubernetesObject(self, "deployment", body={
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": p.name, **meta},
            "spec": {"selector": {"matchLabels": self.selector},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": self.labels}, "spec": pod_spec}}})
        for d in deps:
            self.deployment.manifest.node.add_dependency(d.manifest)
        KubernetesObject(self, "service", body={
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": p.name, **meta},
            "spec": {"type": "ClusterIP", "selector": self.selector,
                     "ports": [{"name": "http", "port": p.port, "targetPort": "http", "protocol": "TCP"}]}})
        if p.create_hpa:
            KubernetesObject(self, "autoscaler", body={
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": p.name, **meta},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": p.name},
                         "minReplicas": p.min_replicas, "maxReplicas": p.max_replicas,
                         "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                             "type": "Utilization", "averageUtilization": p.target_cpu_percent}}}]}})
        KubernetesObject(self, "disruption-budget", body={
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": p.name, **meta},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.selector}}})

    @property
    def url(self) -> str:
        return f"http://{self.props.name}.{self.props.namespace}.svc:{self.props.port}"
