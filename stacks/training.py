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

from tierwise.config.slices import TrainingSlice
from tierwise.config.training import TRAIN_PRECISION, TrainingPipeline, mig_profile
from tierwise.constructs.capacity.mig_claim_template import MigClaimTemplate, MigClaimTemplateProps, claim_template_name
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.serving.data_bucket import DataBucket
from tierwise.constructs.serving.ecr_repository import EcrRepository, EcrRepositoryProps
from tierwise.constructs.training.adapter_training_job import AdapterTrainingJob, AdapterTrainingJobProps

from .base import InClusterStack
from .cluster import ClusterStack

IMAGE_REPOSITORY = "tierwise/distill-train"


def train_config(env: TrainingSlice, p: TrainingPipeline) -> dict:
    """The distill `TrainConfig` of one pipeline (rank from the catalog adapter; `base_model` set by the construct)."""
    rank = next(a.rank for a in env.models[p.model].lora_adapters if a.name == p.adapter)
    cfg = {"method": p.method, "rank": rank, "alpha": 2 * rank, "dropout": 0.05, "learning_rate": p.learning_rate,
           "warmup_steps": p.warmup_steps, "max_steps": p.max_steps, "batch_size": p.batch_size,
           "max_seq_len": p.max_seq_len, "seed": p.seed, "checkpoint_every": p.checkpoint_every}
    if TRAIN_PRECISION[p.method] == "bf16":
        cfg["dtype"] = "bfloat16"
    return cfg


class TrainingStack(InClusterStack):
    layer = "training"

    def __init__(self, scope: Construct, env: TrainingSlice, *, cluster: ClusterStack, models_bucket: DataBucket,
                 adapters_bucket: DataBucket) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        tr = env.training
        if not tr.pipelines:
            return
        prefix = env.prefix
        identity = self.identity

        key = EncryptionKey(self, "training-key", props=EncryptionKeyProps(
            alias=f"{prefix}/training", account_id=env.account_id, region=env.region, protect=env.protect_stateful,
            description="training: the training image repository"))
        image = EcrRepository(self, "training-image", key=key, props=EcrRepositoryProps(
            name=IMAGE_REPOSITORY, protect=env.protect_stateful)).image(tr.image_tag)

        # MIG slices are DRA claims: one ResourceClaimTemplate per (team namespace, profile) the Jobs use
        claims = Construct(self, "mig-claims")
        needed = sorted({(env.namespace(p), mig_profile(p, env.gpu_pools[p.pool])) for p in tr.pipelines
                         if mig_profile(p, env.gpu_pools[p.pool])})
        scopes: dict[str, Construct] = {}
        templates = {}
        for ns, profile in needed:
            ns_scope = scopes.get(ns) or scopes.setdefault(ns, Construct(claims, ns))
            templates[(ns, profile)] = MigClaimTemplate(ns_scope, profile, props=MigClaimTemplateProps(
                profile=profile, namespace=ns))

        teams, models = env.teams, env.models
        self.jobs: dict[str, AdapterTrainingJob] = {}
        group = Construct(self, "pipelines")
        for p in tr.pipelines:
            pool, model, ns = env.gpu_pools[p.pool], models[p.model], env.namespace(p)
            profile = mig_profile(p, pool)
            cpu, mem = pool.pod_resources()  # one GPU unit, sized as model servers are
            job = AdapterTrainingJob(group, p.name, models_bucket=models_bucket, adapters_bucket=adapters_bucket,
                                     props=AdapterTrainingJobProps(
                name=p.name, namespace=ns, team=p.team, queue_name=p.team, image=image, model=p.model,
                adapter=p.adapter, weights_prefix=model.source, dataset_prefix=tr.dataset_prefix(p),
                dataset_id=p.dataset_id, train_config=train_config(env, p), pool=p.pool, gpu_kind=pool.sharing.mode,
                claim_template=claim_template_name(profile) if profile else None, cpu=cpu, memory_gib=mem,
                max_rank=model.max_lora_rank, gate_margin=p.gate_margin, backoff_limit=p.backoff_limit,
                active_deadline_s=p.max_runtime_hours * 3600, ttl_after_finished_s=p.keep_finished_hours * 3600,
                work_disk_gib=p.work_disk_gib, vpc_cidr=env.vpc_cidr, region=env.region,
                role_name=f"{prefix}-train-{p.name}", tags={"team": p.team, "cost-center": teams[p.team].cost_center},
                **identity))
            if profile:
                job.cron_job.manifest.node.add_dependency(templates[(ns, profile)].manifest)
            self.jobs[p.name] = job
