"""agents: every `agents:` entry of the environment as an `AgentWorkload`, the dedicated CPU NodePool
(and its EC2NodeClass) they run on, and the KEDA operator's read-only view of their queue depths.

Its own layer (not part of `serving`): agents are team workloads that come and go with their teams'
releases, while the model plane changes rarely; a separate state keeps an agent onboarding from
planning against the model servers. Deployed after `serving` (the router and guardrails it calls) and
`tenancy` (team namespaces, default deny). An environment without agents still gets the NodePool
(empty, so free) so onboarding the first agent never changes cluster capacity objects.
"""

from __future__ import annotations

from constructs import Construct

from tierwise.config.agents import Agent
from tierwise.config.serving import ServiceEndpoint
from tierwise.config.slices import AgentsSlice
from tierwise.constructs.agents.agent_egress import AgentEgress, ServicePeer
from tierwise.constructs.agents.agent_node_pool import AgentNodePool, AgentNodePoolProps
from tierwise.constructs.agents.agent_workload import AgentWorkload, AgentWorkloadProps, AwsGrant
from tierwise.constructs.agents.keda_queue_reader import KedaQueueReader, KedaQueueReaderProps
from tierwise.constructs.capacity.gpu_node_class import GpuNodeClass, GpuNodeClassProps
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.serving.pod_defaults import selector

from .base import InClusterStack
from .capacity import CapacityStack
from .cluster import ClusterStack

AGENT_POOL = "agents"


def service_peer(svc: ServiceEndpoint) -> ServicePeer:
    """A platform service in the serving namespace as a NetworkPolicy peer (its pods carry `selector(name)`)."""
    return ServicePeer(svc.name, svc.namespace, selector(svc.name), svc.port)


def agent_egress(env: AgentsSlice, a: Agent) -> AgentEgress:
    services = [ServicePeer(t.name, t.namespace, t.selector, t.port) for t in a.tools_of("service")]
    if a.approval_required:
        services.append(service_peer(env.guardrails))
    public_aws = ["dynamodb"] if a.checkpoint.store == "dynamodb" else ["s3"]
    return AgentEgress(router=service_peer(env.router), vpc_cidr=env.vpc_cidr, services=services,
                       fqdns=[t.fqdn for t in a.tools_of("external")], public_aws=public_aws)


class AgentsStack(InClusterStack):
    layer = "agents"

    def __init__(self, scope: Construct, env: AgentsSlice, *, cluster: ClusterStack, capacity: CapacityStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        eks = cluster.eks
        pool = env.agent_pool
        prefix = env.prefix
        identity = self.identity

        capacity_ = Construct(self, "agent-pool")
        GpuNodeClass(capacity_, "node-class", props=GpuNodeClassProps(  # generic AL2023 class; CPU types get the plain AMI
            name=AGENT_POOL, cluster_name=eks.cluster_name, node_role_name=capacity.karpenter.node_role_name,
            disk_gib=pool.disk_gib))
        AgentNodePool(capacity_, "node-pool", props=AgentNodePoolProps(
            name=AGENT_POOL, node_class_name=AGENT_POOL, instance_categories=list(pool.instance_categories),
            capacity_types=list(pool.capacity_types), cpu_limit=pool.cpu_limit, memory_limit_gib=pool.memory_limit_gib,
            consolidate_after=pool.consolidate_after, disruption_budget_nodes=pool.disruption_budget_nodes))
        if not env.agents:
            return

        key = EncryptionKey(self, "agents-key", props=EncryptionKeyProps(
            alias=f"{prefix}/agents", account_id=env.account_id, region=env.region, protect=env.protect_stateful,
            description="agents: work queues, dead-letter queues and checkpoint tables"))
        teams = env.teams
        router_url = f"{env.router.url}/v1"
        guardrails_url = env.guardrails.url
        self.agents: dict[str, AgentWorkload] = {}
        group = Construct(self, "agents")
        for a in env.agents:
            tool_urls = {t.name: t.url for t in a.tools_of("service")}
            tool_urls |= {t.name: f"https://{t.fqdn}" for t in a.tools_of("external")}
            ck = a.checkpoint
            self.agents[a.name] = AgentWorkload(group, a.name, key=key, props=AgentWorkloadProps(
                name=a.name, team=a.team, cost_center=teams[a.team].cost_center, namespace=env.namespace(a),
                image=a.image, prefix=prefix, region=env.region, egress=agent_egress(env, a), router_url=router_url,
                router_principal=a.router_principal, router_key_secret=a.key_secret, models=list(a.models),
                min_replicas=a.replicas.min, max_replicas=a.replicas.max, messages_per_replica=a.queue.messages_per_replica,
                visibility_timeout_s=a.queue.visibility_timeout_s, max_receives=a.queue.max_receives,
                retention_days=a.queue.retention_days, checkpoint_store=ck.store,
                checkpoint_ttl_days=getattr(ck, "ttl_days", 14), checkpoint_bucket=getattr(ck, "bucket", None),
                checkpoint_prefix=getattr(ck, "prefix", None),
                aws_grants=[AwsGrant(t.name, list(t.actions), list(t.resources)) for t in a.tools_of("aws")],
                tool_urls=tool_urls, approval_required=list(a.approval_required),
                guardrails_url=guardrails_url if a.approval_required else None, cpu=a.cpu, memory_mib=a.memory_mib,
                protect=env.protect_stateful, **identity))
        KedaQueueReader(self, "keda-queue-reader", props=KedaQueueReaderProps(
            role_name=f"{prefix}-keda-agent-queues", queue_arns=[w.queue.queue_arn for w in self.agents.values()], **identity))
