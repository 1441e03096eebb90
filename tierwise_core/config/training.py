"""The `training:` section: adapter-training pipelines, each a Kueue-admitted Job template on a spot GPU pool.

A pipeline trains one LoRA adapter of one catalog model for one team (`workloads/distill/README.md` §6):
it reads the model's weights and one pinned dataset from the models bucket, mirrors checkpoints to
`_training/<name>/<run>` in the adapters bucket (a retried pod resumes from them), gates the candidate
against the production adapter and publishes it into the model's registry prefix. Cross-field rules
against teams, pools and the catalog run in `check_training` (environment.py), called by the Environment validator, so
a bad entry fails at load time with its YAML path.
"""

from __future__ import annotations

from typing import Annotated, Literal, Protocol

from pydantic import Field

from .base import Name, Strict
from .pools import GpuPool
from .teams import Team

#: An S3 key prefix without leading or trailing slash.
KeyPrefix = Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")]
#: Key prefix of training checkpoints in the adapters bucket (`_training/<pipeline>/<run>`); never a model name.
CHECKPOINT_PREFIX = "_training"
#: Base-model precision the trainer loads: 4-bit NF4 for QLoRA, bf16 for plain LoRA.
TRAIN_PRECISION = {"qlora": "int4", "lora": "bf16"}


class TrainingPipeline(Strict):
    """One adapter-training pipeline: `kubectl create job --from=cronjob/train-<name> <run>` starts a run."""

    #: Names the CronJob (`train-<name>`), its service account and role, and the checkpoint prefix.
    name: Name
    team: Name
    #: One of the team's namespaces (its Kueue LocalQueue admits the Job); the team's first when omitted.
    namespace: Name | None = None
    #: Catalog model whose adapter this trains; the adapter is published to `s3://<adapters>/<model>/<adapter>`.
    model: Name
    #: One of the model's `lora_adapters`; its `rank` is the LoRA rank trained.
    adapter: Name
    #: GPU pool the Job runs on; it must allow spot capacity, and the team needs quota on it.
    pool: Name
    #: MIG profile of the one slice requested on a MIG pool; the pool layout's largest when omitted.
    mig_profile: str | None = None
    #: Dataset id (first 16 hex of its content hash) under `<training.datasets_prefix>/<name>/` in the models bucket.
    dataset_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    method: Literal["lora", "qlora"] = "qlora"
    max_steps: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 16
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-4
    warmup_steps: Annotated[int, Field(ge=0, le=100_000)] = 50
    max_seq_len: Annotated[int, Field(ge=8, le=1_048_576)] = 2048
    #: Steps between checkpoints (each is mirrored to S3: what a retried pod resumes from).
    checkpoint_every: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    seed: int = 0
    #: The candidate must beat the production adapter (or the base model) by this much on the eval split.
    gate_margin: Annotated[float, Field(ge=0, le=1)] = 0.05
    #: Pod failures before the Job fails; spot interruptions (`DisruptionTarget`) never count.
    backoff_limit: Annotated[int, Field(ge=0, le=100)] = 6
    #: Wall-clock limit of one run (`activeDeadlineSeconds`), retries included.
    max_runtime_hours: Annotated[int, Field(ge=1, le=168)] = 6
    #: A finished run's Job and pods are deleted after this long (`ttlSecondsAfterFinished`).
    keep_finished_hours: Annotated[int, Field(ge=1, le=720)] = 24
    #: Node-local scratch for the run folder (checkpoints, adapter, gate report).
    work_disk_gib: Annotated[int, Field(ge=10, le=4096)] = 100

    @property
    def cron_job_name(self) -> str:
        return f"train-{self.name}"


class Training(Strict):
    """The training stack: one Job template per pipeline, and the ECR repository of the training image."""

    #: Tag of the training image (`workloads/distill/Dockerfile`, EXTRAS=train,qlora) in the `tierwise/distill-train`
    #: ECR repository this stack creates (immutable tags).
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}$")] = "0.1.0"
    #: Key prefix of datasets in the models bucket: a pipeline reads `<datasets_prefix>/<name>/<dataset_id>/`.
    datasets_prefix: KeyPrefix = "datasets"
    pipelines: list[TrainingPipeline] = Field(default_factory=list)

    def dataset_prefix(self, p: TrainingPipeline) -> str:
        """Where pipeline `p`'s pinned dataset lives in the models bucket."""
        return f"{self.datasets_prefix}/{p.name}/{p.dataset_id}"


# --------------------------------------------------------------------------------------------
def mig_profile(p: TrainingPipeline, pool: GpuPool) -> str | None:
    """The MIG profile a pipeline's pod claims on `pool`: the configured one, or the layout's largest slice."""
    layout = getattr(pool.sharing, "layout", None)
    if layout is None:
        return None
    return p.mig_profile or max(sorted(layout), key=pool.mig_slice_gib)


def gpu_unit_gib(p: TrainingPipeline, pool: GpuPool) -> float:
    """Accelerator memory of the one GPU unit the pod gets: a whole GPU, a MIG slice or a time-sliced share."""
    mode = pool.sharing.mode
    if mode == "mig":
        return pool.mig_slice_gib(mig_profile(p, pool))
    if mode == "timeslice":
        return pool.gpu_memory_gib / pool.sharing.replicas_per_gpu
    return pool.gpu_memory_gib


class _HasTeams(Protocol):
    teams: list[Team]


class _HasTraining(Protocol):
    training: Training


def pipeline_namespace(env: _HasTeams, p: TrainingPipeline) -> str:
    """The namespace the pipeline's Job runs in: its own, else its team's first."""
    return next(t for t in env.teams if t.name == p.team).workload_namespace(p.namespace)


def dataset_prefix(env: _HasTraining, p: TrainingPipeline) -> str:
    """Where the pipeline's pinned dataset lives in the models bucket."""
    return env.training.dataset_prefix(p)
