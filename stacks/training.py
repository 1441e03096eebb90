"""training: every `training.pipelines` entry as an `AdapterTrainingJob` (its own identity, read-only S3 mounts
of the base weights and the pinned dataset, a suspended Kueue-admitted CronJob template on the pool's spot
capacity, its NetworkPolicy), the MIG ResourceClaimTemplates those Jobs claim in team namespaces, and the ECR
repository of the training image.

Its own layer: runs come and go with the teams' data, while the model plane changes rarely. It reads the
models and adapters buckets of `serving` (passed in by `app.py`, so cdktn wires the remote state) and needs
`tenancy` (team namespaces with default deny, LocalQueues). An environment without pipelines still gets the
(empty) stack, so adding the first pipeline never renames anything.
"""

from __future__ import annotations

from constructs import Construct

from tierwise.config import Environment
from tierwise.config.model import GpuPool
from tierwise.config.training import TRAIN_PRECISION, TrainingPipeline, dataset_prefix, mig_profile, pipeline_namespace
from tierwise.constructs.capacity.mig_claim_template import MigClaimTemplate, MigClaimTemplateProps, claim_template_name
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.serving.data_bucket import DataBucket
from tierwise.constructs.serving.ecr_repository import EcrRepository, EcrRepositoryProps
from tierwise.constructs.training.adapter_training_job import AdapterTrainingJob, AdapterTrainingJobProps

from .base import TierwiseStack
from .cluster import ClusterStack
from .tenancy import host_share, units_per_gpu

IMAGE_REPOSITORY = "tierwise/distill-train"


def training_resources(pool: GpuPool) -> tuple[str, int]:
    """CPU and memory (GiB) for one training pod: the host share of the one GPU unit it takes, 80% of it
    (headroom for the node's daemons), as the serving stack sizes model servers."""
    cpu, mem = host_share(pool, 1)
    units = units_per_gpu(pool)
    cpu, mem = max(1, cpu // units), max(4, mem // units)
    return str(max(1, cpu * 4 // 5)), max(4, mem * 4 // 5)


def train_config(env: Environment, p: TrainingPipeline) -> dict:
    """The distill `TrainConfig` of one pipeline (rank from the catalog adapter; `base_model` set by the construct)."""
    rank = next(a.rank for a in next(m for m in env.models if m.name == p.model).lora_adapters if a.name == p.adapter)
    cfg = {"method": p.method, "rank": rank, "alpha": 2 * rank, "dropout": 0.05, "learning_rate": p.learning_rate,
           "warmup_steps": p.warmup_steps, "max_steps": p.max_steps, "batch_size": p.batch_size,
           "max_seq_len": p.max_seq_len, "seed": p.seed, "checkpoint_every": p.checkpoint_every}
    if TRAIN_PRECISION[p.method] == "bf16":
        cfg["dtype"] = "bfloat16"
    return cfg


class TrainingStack(TierwiseStack):
    layer = "training"

    def __init__(self, scope: Construct, env: Environment, *, cluster: ClusterStack, models_bucket: DataBucket,
                 adapters_bucket: DataBucket) -> None:
        super().__init__(scope, env)
        eks = cluster.eks
        self.use_cluster(eks.cluster_name, eks.cluster_endpoint, eks.cluster_ca_data)
        tr = env.training
        if not tr.pipelines:
            return
        prefix = f"tierwise-{env.name}"
        identity = {"account_id": env.account_id, "cluster_name": eks.cluster_name, "cluster_arn": eks.cluster_arn}

        key = EncryptionKey(self, "training-key", props=EncryptionKeyProps(
            alias=f"{prefix}/training", account_id=env.account_id, region=env.region, protect=env.protect_stateful,
            description="training: the training image repository"))
        image = EcrRepository(self, "training-image", key=key, props=EcrRepositoryProps(
            name=IMAGE_REPOSITORY, protect=env.protect_stateful)).image(tr.image_tag)

        # MIG slices are DRA claims: one ResourceClaimTemplate per (team namespace, profile) the Jobs use
        claims = Construct(self, "mig-claims")
        needed = sorted({(pipeline_namespace(env, p), mig_profile(p, env.pool(p.pool))) for p in tr.pipelines
                         if mig_profile(p, env.pool(p.pool))})
        scopes: dict[str, Construct] = {}
        templates = {}
        for ns, profile in needed:
            ns_scope = scopes.get(ns) or scopes.setdefault(ns, Construct(claims, ns))
            templates[(ns, profile)] = MigClaimTemplate(ns_scope, profile, props=MigClaimTemplateProps(
                profile=profile, namespace=ns))

        teams = {t.name: t for t in env.teams}
        models = {m.name: m for m in env.models}
        self.jobs: dict[str, AdapterTrainingJob] = {}
        group = Construct(self, "pipelines")
        for p in tr.pipelines:
            pool, model, ns = env.pool(p.pool), models[p.model], pipeline_namespace(env, p)
            profile = mig_profile(p, pool)
            cpu, mem = training_resources(pool)
            job = AdapterTrainingJob(group, p.name, models_bucket=models_bucket, adapters_bucket=adapters_bucket,
                                     props=AdapterTrainingJobProps(
                name=p.name, namespace=ns, team=p.team, queue_name=p.team, image=image, model=p.model,
                adapter=p.adapter, weights_prefix=model.source, dataset_prefix=dataset_prefix(env, p),
                dataset_id=p.dataset_id, train_config=train_config(env, p), pool=p.pool, gpu_kind=pool.sharing.mode,
                claim_template=claim_template_name(profile) if profile else None, cpu=cpu, memory_gib=mem,
                max_rank=model.max_lora_rank, gate_margin=p.gate_margin, backoff_limit=p.backoff_limit,
                active_deadline_s=p.max_runtime_hours * 3600, ttl_after_finished_s=p.keep_finished_hours * 3600,
                work_disk_gib=p.work_disk_gib, vpc_cidr=env.network.vpc_cidr, region=env.region,
                role_name=f"{prefix}-train-{p.name}", tags={"team": p.team, "cost-center": teams[p.team].cost_center},
                **identity))
            if profile:
                job.cron_job.manifest.node.add_dependency(templates[(ns, profile)].manifest)
            self.jobs[p.name] = job
