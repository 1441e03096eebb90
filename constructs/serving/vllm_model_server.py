"""`VllmModelServer`: one catalog model served by vLLM's OpenAI-compatible server.

A Deployment when one node holds the model's GPUs, a LeaderWorkerSet (one leader plus workers, Ray
across nodes, pipeline parallel between nodes) when it needs more. Weights, LoRA adapters and the
speculative draft model are mounted read-only from S3 with the server's own read-only identity.
Replicas are left to the autoscaler (`QueueScaledObject`): the manifest never sets them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from constructs import Construct

from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps
from ..kubernetes import KubernetesObject
from .data_bucket import DataBucket
from .pod_defaults import (DEFAULT_UID, DO_NOT_DISRUPT, IMAGE_PULL_POLICY, container_security, gpu_placement, labels,
                           pod_security, resources, selector, spread)
from .s3_mount import S3Mount, S3MountProps

PORT = 8000
LWS_LEADER_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
NAME_LABEL_LWS = "leaderworkerset.sigs.k8s.io/name"


@dataclass(frozen=True)
class LoraAdapterSpec:
    name: str
    rank: int


@dataclass(frozen=True)
class VllmModelServerProps:
    model: str
    namespace: str
    image: str
    #: Weights prefix in the models bucket (e.g. `meta-llama/Llama-3.1-8B-Instruct`).
    source: str
    pool: str
    #: How GPUs are requested: whole devices, a DRA MIG claim, or one time-sliced share.
    gpu_kind: Literal["full", "mig", "timeslice"]
    #: GPUs of the model in total (full only); split over `nodes` pods.
    gpus: int = 1
    #: GPUs one node of the pool has; more than this makes the server a LeaderWorkerSet.
    gpus_per_node: int = 8
    #: ResourceClaimTemplate name (MIG only), from `claim_template_name()`.
    claim_template: str | None = None
    cpu: str = "4"
    #: CPU limit per pod; equal to `cpu` when omitted (Guaranteed QoS with the memory limit).
    cpu_limit: str | None = None
    memory_gib: int = 32
    precision: str = "bf16"
    max_model_len: int = 8192
    adapters: list[LoraAdapterSpec] = field(default_factory=list)
    max_loras: int = 4
    max_lora_rank: int = 16
    #: Draft model prefix in the models bucket for speculative decoding; off when omitted.
    speculative_source: str | None = None
    #: More names this server answers to (`--served-model-name` takes several): a model-version canary also answers
    #: to its stable model's name, so the Gateway can split one model name over both versions.
    served_model_aliases: tuple[str, ...] = ()
    num_speculative_tokens: int = 5
    #: Startup probe budget: weights stream from S3 before `/health` answers.
    load_timeout_s: int = 1800
    # identity
    role_name: str = ""
    account_id: str = ""
    cluster_name: str = ""
    cluster_arn: str = ""


def _dtype_args(precision: str) -> list[str]:
    if precision in ("bf16", "fp16", "fp32"):
        return ["--dtype", {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[precision]]
    if precision == "fp8":
        return ["--quantization", "fp8"]
    return []  # int8/int4 checkpoints carry their quantization config; vLLM reads it from the weights


class VllmModelServer(Construct):
    """Creates a `ServiceAccount`, its `WorkloadIdentity` (read-only S3 on this model's prefixes), one
    `S3Mount` each for weights, adapters and draft model, a `Deployment` or `LeaderWorkerSet`, a
    `Service` (port 8000, leader pods only for LWS) and a `PodDisruptionBudget` (one pod or group at a time)."""

    def __init__(self, scope: Construct, id: str, *, models_bucket: DataBucket, adapters_bucket: DataBucket,
                 props: VllmModelServerProps) -> None:
        super().__init__(scope, id)
        p = props
        self.props = p
        name = f"vllm-{p.model}"
        self.workload_name = name
        if p.gpu_kind == "mig" and not p.claim_template:
            raise ValueError(f"VllmModelServer {p.model}: gpu_kind 'mig' needs claim_template")
        if p.gpu_kind != "full" and p.gpus != 1:
            raise ValueError(f"VllmModelServer {p.model}: a {p.gpu_kind} share is one device; gpus must be 1, got {p.gpus}")
        if p.gpus > p.gpus_per_node and p.gpus % p.gpus_per_node:
            raise ValueError(f"VllmModelServer {p.model}: {p.gpus} GPUs do not split evenly over nodes of {p.gpus_per_node}")
        for a in p.adapters:
            if a.rank > p.max_lora_rank:
                raise ValueError(f"VllmModelServer {p.model}: adapter {a.name} rank {a.rank} > max_lora_rank {p.max_lora_rank}")
        self.nodes = max(1, p.gpus // p.gpus_per_node) if p.gpus > p.gpus_per_node else 1
        gpus_per_pod = p.gpus // self.nodes
        self.tensor_parallel = gpus_per_pod if p.gpu_kind == "full" else 1
        self.labels = {**labels(name, "model-server"), "tierwise.io/model": p.model, "tierwise.io/pool": p.pool}
        self.selector = selector(name)

        sa = KubernetesObject(self, "service-account", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": p.namespace, "labels": self.labels},
            "automountServiceAccountToken": False})
        weights_prefixes = [p.source] + ([p.speculative_source] if p.speculative_source else [])
        statements = models_bucket.grant_read(weights_prefixes, sid="Weights")
        if p.adapters:
            statements += adapters_bucket.grant_read([p.model], sid="Adapters")
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=p.role_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=name, statements=statements,
            tags={"tierwise.io/workload": name}))

        mounts = {"weights": (models_bucket, p.source)}
        if p.adapters:
            mounts["adapters"] = (adapters_bucket, p.model)
        if p.speculative_source:
            mounts["draft"] = (models_bucket, p.speculative_source)
        claims = {}
        for key, (bucket, prefix) in mounts.items():
            m = S3Mount(self, f"{key}-mount", props=S3MountProps(
                name=f"{name}-{key}", namespace=p.namespace, bucket_name=bucket.bucket_name, prefix=prefix, uid=DEFAULT_UID))
            claims[key] = m.claim_name

        args = ["--model", "/models/weights", "--served-model-name", p.model, *p.served_model_aliases, "--host", "0.0.0.0", "--port", str(PORT),
                "--tensor-parallel-size", str(self.tensor_parallel), "--max-model-len", str(p.max_model_len),
                "--enable-prefix-caching", *_dtype_args(p.precision)]
        if self.nodes > 1:
            args += ["--pipeline-parallel-size", str(self.nodes), "--distributed-executor-backend", "ray"]
        if p.adapters:
            args += ["--enable-lora", "--max-loras", str(p.max_loras), "--max-lora-rank", str(p.max_lora_rank),
                     "--lora-modules", *[f"{a.name}=/models/adapters/{a.name}" for a in p.adapters]]
        if p.speculative_source:
            args += ["--speculative-config", json.dumps({"model": "/models/draft", "num_speculative_tokens": p.num_speculative_tokens},
                                                        sort_keys=True)]

        volumes = [{"name": k, "persistentVolumeClaim": {"claimName": c, "readOnly": True}} for k, c in sorted(claims.items())]
        volumes += [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(1, p.memory_gib // 4)}Gi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "20Gi"}}]
        mounts_ = [{"name": k, "mountPath": f"/models/{k}", "readOnly": True} for k in sorted(claims)]
        mounts_ += [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "tmp", "mountPath": "/tmp"}]
        pod_extra: dict[str, Any] = {}
        if p.gpu_kind == "mig":
            res = resources(p.cpu, f"{p.memory_gib}Gi", p.cpu_limit)
            res["claims"] = [{"name": "mig"}]
            pod_extra["resourceClaims"] = [{"name": "mig", "resourceClaimTemplateName": p.claim_template}]
        else:
            res = resources(p.cpu, f"{p.memory_gib}Gi", p.cpu_limit, **{"nvidia.com/gpu": gpus_per_pod})
        env = [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "HOME", "value": "/tmp"},
               {"name": "HF_HOME", "value": "/tmp/hf"}, {"name": "VLLM_NO_USAGE_STATS", "value": "1"}]
        period = 10
        probes = {
            "startupProbe": {"httpGet": {"path": "/health", "port": PORT}, "periodSeconds": period,
                             "failureThreshold": max(1, p.load_timeout_s // period)},
            "readinessProbe": {"httpGet": {"path": "/health", "port": PORT}, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"httpGet": {"path": "/health", "port": PORT}, "periodSeconds": 10, "failureThreshold": 6},
        }
        server = {"name": "vllm", "image": p.image, "imagePullPolicy": IMAGE_PULL_POLICY, "env": env,
                  "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}], "resources": res,
                  "volumeMounts": mounts_, "securityContext": container_security(), **probes}

        def pod_template(containers: list[dict[str, Any]], extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
            return {
                # do-not-disrupt: consolidation never evicts a server (loading one costs minutes of GPU time);
                # the autoscaler removes replicas, then Karpenter reclaims the empty node after consolidate_after.
                "metadata": {"labels": {**self.labels, **(extra_labels or {})}, "annotations": dict(DO_NOT_DISRUPT)},
                "spec": {"serviceAccountName": name, "automountServiceAccountToken": False, "enableServiceLinks": False,
                         "securityContext": pod_security(), "terminationGracePeriodSeconds": 120,
                         "containers": containers, "volumes": volumes, "topologySpreadConstraints": spread(name),
                         **gpu_placement(p.pool), **pod_extra},
            }

        meta = {"name": name, "namespace": p.namespace, "labels": self.labels}
        if self.nodes == 1:
            self.kind, self.api_version = "Deployment", "apps/v1"
            body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
                "selector": {"matchLabels": self.selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": pod_template([{**server, "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                                           "args": args}])}}
            service_selector = self.selector
        else:
            self.kind, self.api_version = "LeaderWorkerSet", "leaderworkerset.x-k8s.io/v1"
            ray = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
            leader = {**server, "command": ["/bin/sh", "-c"], "args": [
                f"{ray} leader --ray_cluster_size=$(LWS_GROUP_SIZE) && "
                f"exec python3 -m vllm.entrypoints.openai.api_server {' '.join(_quote(a) for a in args)}"]}
            worker = {k: v for k, v in server.items() if k not in ("startupProbe", "readinessProbe", "livenessProbe", "ports")}
            worker = {**worker, "command": ["/bin/sh", "-c"], "args": [f"exec {ray} worker --ray_address=$(LWS_LEADER_ADDRESS)"]}
            body = {"apiVersion": self.api_version, "kind": "LeaderWorkerSet", "metadata": meta, "spec": {
                "startupPolicy": "LeaderCreated",
                "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {"maxSurge": 1, "maxUnavailable": 0}},
                "leaderWorkerTemplate": {"size": self.nodes, "restartPolicy": "RecreateGroupOnPodRestart",
                                         "leaderTemplate": pod_template([leader], {"tierwise.io/role": "leader"}),
                                         "workerTemplate": pod_template([worker], {"tierwise.io/role": "worker"})}}}
            service_selector = {**self.selector, "tierwise.io/role": "leader"}
        self.workload = KubernetesObject(self, "workload", body=body)
        self.workload.manifest.node.add_dependency(sa.manifest)
        self.service = KubernetesObject(self, "service", body={
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": p.namespace, "labels": self.labels},
            "spec": {"type": "ClusterIP", "selector": service_selector,
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}})
        KubernetesObject(self, "disruption-budget", body={
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": p.namespace, "labels": self.labels},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.selector}}})

    @property
    def service_url(self) -> str:
        return f"http://{self.workload_name}.{self.props.namespace}.svc:{PORT}"


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'" if any(c in arg for c in " {}\"'$") else arg
