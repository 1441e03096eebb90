"""`AdapterTrainingJob`: one adapter-training pipeline as a Kueue-admitted, spot-tolerant Job template.

The template is a `batch/v1` CronJob with `suspend: true`: its schedule never fires, and a run is started
on demand with `kubectl create job --from=cronjob/train-<name> <run>`, which copies the job template (its
labels included). Kueue admits the Job through the team's LocalQueue (`kueue.x-k8s.io/queue-name`) and
unsuspends it once the team's quota on the pool has room.

One pod runs the four steps of `workloads/distill/README.md` §6: the base weights and the pinned dataset
are Mountpoint S3 volumes (read-only, with the pod's own credentials), `train` mirrors checkpoints to
`s3://<adapters>/_training/<name>/<run>` (the run id is the Job's name, so a pod retried after a spot
interruption resumes from the newest checkpoint of the same run), `gate` scores the candidate against the
production adapter (exit 2 = refused: the run succeeds and nothing is published), and `publish` stores
the adapter as the next immutable version in `s3://<adapters>/<model>/<adapter>`. Promotion and rollout
stay a separate, approved step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from constructs import Construct

from ..agents.agent_egress import public_https
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps
from ..kubernetes import KubernetesObject
from ..serving.data_bucket import DataBucket
from ..serving.network_policy import NS_NAME_LABEL, NetworkPolicy, NetworkPolicyProps, cidr, tcp
from ..serving.pod_defaults import (DO_NOT_DISRUPT, IMAGE_PULL_POLICY, POD_IDENTITY_AGENT_CIDR, container_security,
                                    gpu_placement, labels, pod_security, resources, selector)
from ..serving.s3_mount import S3Mount, S3MountProps

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
#: Set by the Job controller on every pod of a Job (Kubernetes >= 1.27): the run id of a checkpoint prefix.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: Adapters-bucket prefix of training checkpoints (config/training.py CHECKPOINT_PREFIX).
CHECKPOINT_PREFIX = "_training"
#: Exit status of a `tierwise-adapters` refusal (gate failed, adapter over the limits, resume with another config).
REFUSED_EXIT_CODE = 2
#: Never fires while the CronJob is suspended; a run is always `kubectl create job --from=cronjob/...`.
INERT_SCHEDULE = "0 0 1 1 *"
CONTAINER = "train"
BASE_DIR, CONFIG_DIR, WORK_DIR = "/models/base", "/config", "/work"


@dataclass(frozen=True)
class AdapterTrainingJobProps:
    #: Pipeline name: the CronJob, service account and role are `train-<name>`; checkpoints `_training/<name>/`.
    name: str
    namespace: str
    team: str
    #: The team's Kueue LocalQueue in `namespace`.
    queue_name: str
    #: Training image (`workloads/distill/Dockerfile`, EXTRAS=train,qlora), immutable-tagged.
    image: str
    #: Catalog model and its adapter: the registry is `s3://<adapters>/<model>`, the adapter `<adapter>` in it.
    model: str
    adapter: str
    #: Weights prefix of the model in the models bucket (mounted read-only at /models/base).
    weights_prefix: str
    #: Prefix of the pinned dataset in the models bucket (mounted read-only at /data/<dataset_id>).
    dataset_prefix: str
    dataset_id: str
    #: The `TrainConfig` (workloads/distill) as a dict; `base_model` is set to the mounted weights.
    train_config: dict[str, Any]
    #: GPU pool the pod is placed on, on spot capacity only.
    pool: str
    #: How the one GPU is requested: a whole device, a DRA MIG claim, or one time-sliced share.
    gpu_kind: Literal["full", "mig", "timeslice"]
    #: ResourceClaimTemplate in `namespace` (MIG only), from `claim_template_name()`.
    claim_template: str | None = None
    cpu: str = "4"
    memory_gib: int = 32
    #: The servers' `--max-lora-rank`: publish refuses a bigger adapter.
    max_rank: int = 16
    gate_margin: float = 0.05
    backoff_limit: int = 6
    active_deadline_s: int = 6 * 3600
    ttl_after_finished_s: int = 86400
    work_disk_gib: int = 100
    #: VPC CIDR: STS (and KMS, when configured) interface endpoints are reached on 443 inside it.
    vpc_cidr: str = "10.0.0.0/16"
    region: str = ""
    # identity
    role_name: str = ""
    account_id: str = ""
    cluster_name: str = ""
    cluster_arn: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def _script(p: AdapterTrainingJobProps, data_dir: str) -> str:
    # `$NAME`, never `${NAME}`: Terraform would read `${...}` inside the manifest as its own interpolation.
    run, work = f"{WORK_DIR}/run", f"{WORK_DIR}"
    return "\n".join([
        "set -eu",
        f'checkpoints="s3://$ADAPTERS_BUCKET/{CHECKPOINT_PREFIX}/{p.name}/$RUN_ID"',
        f"tierwise-adapters train {CONFIG_DIR}/train.json {data_dir} {run} --checkpoint-url \"$checkpoints\"",
        "rc=0",
        f"tierwise-adapters gate {BASE_DIR} {run}/adapter {data_dir} {work}/gate.json "
        f"--production {p.adapter}@prod --margin {p.gate_margin:g} || rc=$?",
        f'if [ "$rc" -eq {REFUSED_EXIT_CODE} ]; then echo "gate refused the candidate: not published"; exit 0; fi',
        '[ "$rc" -eq 0 ] || exit "$rc"',
        f"exec tierwise-adapters publish {p.adapter} {run}/adapter --train-summary {run}/train_summary.json "
        f"--gate-report {work}/gate.json",
    ])


class AdapterTrainingJob(Construct):
    """Creates a `ServiceAccount`, its `WorkloadIdentity` (read the model's weights and the dataset; get, put and
    list the adapter's registry prefix and the pipeline's checkpoint prefix; KMS on the bucket key; no delete),
    two read-only `S3Mount`s (weights, dataset), a `ConfigMap` with `train.json`, the suspended `CronJob`
    (Kueue queue label, one GPU unit on spot nodes of the pool, podFailurePolicy: spot disruptions are retried
    without counting, refusals fail the Job) and a `NetworkPolicy` allowing egress to DNS, the AWS endpoints on
    443 and the Pod Identity agent only."""

    def __init__(self, scope: Construct, id: str, *, models_bucket: DataBucket, adapters_bucket: DataBucket,
                 props: AdapterTrainingJobProps) -> None:
        super().__init__(scope, id)
        p = props
        name = f"train-{p.name}"
        if len(name) > 52:
            raise ValueError(f"AdapterTrainingJob {p.name}: CronJob name {name!r} is longer than 52 characters")
        if p.gpu_kind == "mig" and not p.claim_template:
            raise ValueError(f"AdapterTrainingJob {p.name}: gpu_kind 'mig' needs claim_template")
        if p.gpu_kind != "mig" and p.claim_template:
            raise ValueError(f"AdapterTrainingJob {p.name}: claim_template is only for gpu_kind 'mig', got {p.gpu_kind!r}")
        for key in ("weights_prefix", "dataset_prefix"):
            v = getattr(p, key)
            if not v or v.startswith("/") or v.endswith("/"):
                raise ValueError(f"AdapterTrainingJob {p.name}: {key} must be a key prefix without leading/trailing '/', got {v!r}")
        if p.active_deadline_s < 600:
            raise ValueError(f"AdapterTrainingJob {p.name}: active_deadline_s must be >= 600, got {p.active_deadline_s}")
        self.name = name
        self.labels = {**labels(name, "adapter-training", team=p.team), "tierwise.io/model": p.model,
                       "tierwise.io/adapter": p.adapter, "tierwise.io/pool": p.pool}
        self.selector = selector(name)
        meta = {"name": name, "namespace": p.namespace, "labels": self.labels}

        sa = KubernetesObject(self, "service-account", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False})
        self.checkpoint_prefix = f"{CHECKPOINT_PREFIX}/{p.name}"
        self.registry_prefix = f"{p.model}/{p.adapter}"
        statements = (models_bucket.grant_read([p.weights_prefix], sid="Weights")
                      + models_bucket.grant_read([p.dataset_prefix], sid="Dataset")
                      + adapters_bucket.grant_read_write([self.registry_prefix, self.checkpoint_prefix], sid="Adapters"))
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=p.role_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=name, statements=statements,
            tags={**p.tags, "tierwise.io/workload": name}))

        weights = S3Mount(self, "weights-mount", props=S3MountProps(
            name=f"{name}-weights", namespace=p.namespace, bucket_name=models_bucket.bucket_name, prefix=p.weights_prefix))
        # the dataset id is in the volume's name: a new dataset is a new volume, never a re-pointed one
        dataset = S3Mount(self, "dataset-mount", props=S3MountProps(
            name=f"{name}-data-{p.dataset_id}", namespace=p.namespace, bucket_name=models_bucket.bucket_name,
            prefix=p.dataset_prefix))
        config = KubernetesObject(self, "config", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"train.json": json.dumps({**p.train_config, "base_model": BASE_DIR}, indent=2, sort_keys=True) + "\n"}})

        data_dir = f"/data/{p.dataset_id}"
        env = [
            {"name": "RUN_ID", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}},
            {"name": "ADAPTERS_BUCKET", "value": adapters_bucket.bucket_name},
            {"name": "TIERWISE_DISTILL_REGISTRY_URL", "value": f"s3://{adapters_bucket.bucket_name}/{p.model}"},
            {"name": "TIERWISE_DISTILL_MAX_RANK", "value": str(p.max_rank)},
            {"name": "TIERWISE_DISTILL_LORA_ROOT", "value": f"{WORK_DIR}/lora-cache"},
            {"name": "TIERWISE_DISTILL_AWS_REGION", "value": p.region},
            {"name": "AWS_REGION", "value": p.region},
            {"name": "HOME", "value": "/tmp"},
            {"name": "HF_HOME", "value": "/tmp/hf"},
        ]
        gpu: dict[str, Any] = {} if p.gpu_kind == "mig" else {"nvidia.com/gpu": 1}
        res = resources(p.cpu, f"{p.memory_gib}Gi", **gpu)
        pod_extra: dict[str, Any] = {}
        if p.gpu_kind == "mig":
            res["claims"] = [{"name": "mig"}]
            pod_extra["resourceClaims"] = [{"name": "mig", "resourceClaimTemplateName": p.claim_template}]
        container = {
            "name": CONTAINER, "image": p.image, "imagePullPolicy": IMAGE_PULL_POLICY,
            "command": ["/bin/sh", "-c"], "args": [_script(p, data_dir)], "env": env, "resources": res,
            "securityContext": container_security(),
            "volumeMounts": [
                {"name": "weights", "mountPath": BASE_DIR, "readOnly": True},
                {"name": "dataset", "mountPath": data_dir, "readOnly": True},
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                {"name": "work", "mountPath": WORK_DIR},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "shm", "mountPath": "/dev/shm"},
            ]}
        placement = gpu_placement(p.pool)
        term = placement["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        term["matchExpressions"].append({"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": ["spot"]})
        pod = {
            # do-not-disrupt: consolidation never evicts a run; spot interruptions still happen and are retried
            "metadata": {"labels": self.labels, "annotations": dict(DO_NOT_DISRUPT)},
            "spec": {
                "serviceAccountName": name, "automountServiceAccountToken": False, "enableServiceLinks": False,
                "restartPolicy": "Never", "securityContext": pod_security(), "terminationGracePeriodSeconds": 60,
                "containers": [container], **placement, **pod_extra,
                "volumes": [
                    {"name": "weights", "persistentVolumeClaim": {"claimName": weights.claim_name, "readOnly": True}},
                    {"name": "dataset", "persistentVolumeClaim": {"claimName": dataset.claim_name, "readOnly": True}},
                    {"name": "config", "configMap": {"name": name, "defaultMode": 0o444}},
                    {"name": "work", "emptyDir": {"sizeLimit": f"{p.work_disk_gib}Gi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
                    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{max(1, p.memory_gib // 8)}Gi"}},
                ]},
        }
        job_spec = {
            "suspend": True,  # Kueue unsuspends it on admission
            "parallelism": 1, "completions": 1,
            "backoffLimit": p.backoff_limit,
            "podFailurePolicy": {"rules": [
                # node disruption (spot interruption, eviction, preemption): retry without counting against backoffLimit
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                # a refusal is deterministic: retrying cannot change it
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                                      "values": [REFUSED_EXIT_CODE]}},
            ]},
            "activeDeadlineSeconds": p.active_deadline_s,
            "ttlSecondsAfterFinished": p.ttl_after_finished_s,
            "template": pod,
        }
        self.cron_job = KubernetesObject(self, "cron-job", body={
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": INERT_SCHEDULE, "timeZone": "Etc/UTC", "suspend": True, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"metadata": {"labels": {**self.labels, QUEUE_LABEL: p.queue_name}},
                                     "spec": job_spec}}})
        for d in (sa, config, weights.claim, dataset.claim):
            self.cron_job.manifest.node.add_dependency(d.manifest)

        NetworkPolicy(self, "network-policy", props=NetworkPolicyProps(
            name=name, namespace=p.namespace, pod_selector=self.selector, egress=[
                {"to": [{"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [cidr(p.vpc_cidr)], "ports": tcp(443)},  # STS/KMS interface endpoints
                public_https(),  # S3 through its gateway endpoint (public S3 addresses; the role bounds what it may do)
                {"to": [cidr(POD_IDENTITY_AGENT_CIDR)], "ports": tcp(80)},  # EKS Pod Identity agent: the pod's credentials
            ]))

    @property
    def cron_job_name(self) -> str:
        return self.name
