"""The `training:` section: adapter-training pipelines, each a Kueue-admitted Job template on a spot GPU pool.

A pipeline trains one LoRA adapter of one catalog model for one team (`workloads/distill/README.md` §6):
it reads the model's weights and one pinned dataset from the models bucket, mirrors checkpoints to
`_training/<name>/<run>` in the adapters bucket (a retried pod resumes from them), gates the candidate
against the production adapter and publishes it into the model's registry prefix. Cross-field rules
against teams, pools and the catalog run in `check_training`, called by the Environment validator, so
a bad entry fails at load time with its YAML path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import Name, Strict, resolve_team
from .hardware import WEIGHTS_MEMORY_FRACTION, weights_gib

if TYPE_CHECKING:  # pragma: no cover
    from .model import Environment, GpuPool

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


def pipeline_namespace(env: Environment, p: TrainingPipeline) -> str:
    return p.namespace or next(t for t in env.teams if t.name == p.team).namespaces[0]


def dataset_prefix(env: Environment, p: TrainingPipeline) -> str:
    """Where the pipeline's pinned dataset lives in the models bucket."""
    return f"{env.training.datasets_prefix}/{p.name}/{p.dataset_id}"


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_training(env: Environment) -> None:
    """Cross-field rules of `training:` against teams, GPU pools and the model catalog."""
    tr = env.training
    for m in env.models:
        for src in [m.source] + ([m.speculative_model] if m.speculative_model else []):
            if _overlaps(tr.datasets_prefix, src):
                raise ValueError(f"training.datasets_prefix {tr.datasets_prefix!r} overlaps the weights of models "
                                 f"({m.name}: {src!r}); model servers would read datasets. Use a separate prefix")
    pools = {p.name: p for p in env.gpu_pools}
    models = {m.name: m for m in env.models}
    seen: set[str] = set()
    for i, p in enumerate(tr.pipelines):
        where = f"training.pipelines[{i}]"
        if p.name in seen:
            raise ValueError(f"{where}.name: pipeline name {p.name!r} appears twice")
        seen.add(p.name)
        team = resolve_team(env, where, p.team, p.namespace, "the Job runs in (and is admitted by) its team's queue",
                            field_paths=True)
        pool = pools.get(p.pool)
        if pool is None:
            raise ValueError(f"{where}.pool: pool {p.pool!r} is not in gpu_pools ({', '.join(pools)})")
        if "spot" not in pool.capacity_types:
            raise ValueError(f"{where}.pool: pool {p.pool!r} has capacity_types {pool.capacity_types}; training runs "
                             "on spot (resumable from checkpoints), so add 'spot' to the pool or pick a pool that has it")
        if team.gpu_quota.get(p.pool, 0) < 1:
            raise ValueError(f"{where}.pool: team {p.team} has no gpu_quota on pool {p.pool!r} "
                             f"({team.gpu_quota or 'none'}); Kueue would never admit the Job. Add teams[].gpu_quota.{p.pool}")
        model = models.get(p.model)
        if model is None:
            raise ValueError(f"{where}.model: model {p.model!r} is not in models ({', '.join(models) or 'none'})")
        if p.model not in team.allowed_models:
            raise ValueError(f"{where}.model: model {p.model!r} is not in team {p.team}'s allowed_models "
                             f"({', '.join(team.allowed_models) or 'none'}); a team trains adapters only for models it may call")
        if not model.lora_adapters:
            raise ValueError(f"{where}.model: model {p.model!r} has no lora_adapters; declare the adapter under "
                             f"models[].lora_adapters first (the servers load only declared adapters)")
        adapters = {a.name: a for a in model.lora_adapters}
        if p.adapter not in adapters:
            raise ValueError(f"{where}.adapter: {p.adapter!r} is not one of model {p.model}'s lora_adapters "
                             f"({', '.join(adapters)})")
        layout = getattr(pool.sharing, "layout", None)
        if p.mig_profile is not None and layout is None:
            raise ValueError(f"{where}.mig_profile: pool {p.pool!r} shares GPUs as {pool.sharing.mode!r}, not MIG; "
                             "remove mig_profile")
        if layout is not None and p.mig_profile is not None and p.mig_profile not in layout:
            raise ValueError(f"{where}.mig_profile: {p.mig_profile!r} is not in pool {p.pool!r}'s layout ({', '.join(layout)})")
        precision = TRAIN_PRECISION[p.method]
        need, have = weights_gib(model.params_b, precision), gpu_unit_gib(p, pool)
        if need > have * WEIGHTS_MEMORY_FRACTION:
            raise ValueError(f"{where}.pool: {p.method} loads {model.name} ({model.params_b:g}B) at {precision}: "
                             f"{need:.1f} GiB of weights, but one GPU unit of pool {p.pool!r} has {have:g} GiB "
                             f"({WEIGHTS_MEMORY_FRACTION:.0%} for weights); use qlora, a bigger MIG profile or another pool")
        if p.max_seq_len > model.max_model_len:
            raise ValueError(f"{where}.max_seq_len: {p.max_seq_len} exceeds model {p.model}'s max_model_len "
                             f"{model.max_model_len}; vLLM could not serve what the adapter was trained on")
        if p.work_disk_gib > pool.disk_gib // 2:
            raise ValueError(f"{where}.work_disk_gib: {p.work_disk_gib} GiB is more than half of pool {p.pool!r}'s "
                             f"disk_gib {pool.disk_gib}; lower it or raise gpu_pools[].disk_gib")
