"""`AgentWorkload`: one `agents:` entry turned into everything the agent needs, and nothing more.

Identity: its own ServiceAccount and Pod Identity role, scoped to exactly its queue, its checkpoint
table (or S3 prefix) and the AWS actions it declared. Work: an SQS queue with a DLQ, and a KEDA
ScaledObject on queue depth (the Deployment leaves `replicas` unset). Reach: NetworkPolicies that allow
the router and the declared tools only (external hosts through the firewall allowlist), each declared on
the Deployment for TW-AGENT-003. Placement: the dedicated CPU agent NodePool. Budget: the router key
is a Secret referenced by name; its hash maps to the agent's router principal (team + budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from constructs import Construct

from ..iam import Statement
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps
from ..kubernetes import KubernetesObject
from ..serving.data_bucket import IKmsKey
from ..serving.network_policy import NetworkPolicy, NetworkPolicyProps, pods, tcp
from ..serving.pod_defaults import IMAGE_PULL_POLICY, container_security, labels, pod_security, resources, selector, spread
from .agent_egress import AGENT_LABEL, DECLARED_EGRESS_ANNOTATION, AgentEgress, declaration, egress_rules
from .agent_node_pool import agent_placement
from .agent_queue import AgentQueue, AgentQueueProps
from .checkpoint_table import CheckpointTable, CheckpointTableProps
from .sqs_scaled_object import SqsScaledObject, SqsScaledObjectProps

CONFIG_DIR = "/etc/tierwise"
CONFIG_FILE = "agent.json"
#: Key of the router API key inside the agent's Secret.
KEY_SECRET_KEY = "api-key"
#: The router key is mounted as a file (not an env var), named after the setting it fills.
SECRETS_DIR = f"{CONFIG_DIR}/secrets"
KEY_FILE = "tierwise_agent_router_api_key"
IAM_ROLE_NAME_MAX = 64


@dataclass(frozen=True)
class AwsGrant:
    """Declared AWS actions on named resources (one `aws` tool)."""

    tool: str
    actions: list[str]
    resources: list[str]


@dataclass(frozen=True)
class AgentWorkloadProps:
    name: str
    team: str
    cost_center: str
    namespace: str
    image: str
    #: Name prefix of the AWS resources (queue, table, role): `<prefix>-agent-<name>`.
    prefix: str
    region: str
    account_id: str
    cluster_name: str
    cluster_arn: str
    egress: AgentEgress
    router_url: str
    #: The agent's principal in the router config (its key's team and budget) and the Secret holding its key.
    router_principal: str
    router_key_secret: str
    models: list[str]
    min_replicas: int = 0
    max_replicas: int = 4
    messages_per_replica: int = 5
    visibility_timeout_s: int = 300
    max_receives: int = 5
    retention_days: int = 4
    checkpoint_store: Literal["dynamodb", "s3"] = "dynamodb"
    checkpoint_ttl_days: int = 14
    #: S3 checkpoint: an existing bucket and the key prefix this agent owns (store "s3" only).
    checkpoint_bucket: str | None = None
    checkpoint_prefix: str | None = None
    aws_grants: list[AwsGrant] = field(default_factory=list)
    #: Tool name -> base URL (in-cluster services) or https://fqdn (external); given to the agent as config.
    tool_urls: dict[str, str] = field(default_factory=dict)
    approval_required: list[str] = field(default_factory=list)
    guardrails_url: str | None = None
    cpu: str = "250m"
    memory_mib: int = 512
    protect: bool = True


class AgentWorkload(Construct):
    """Creates a `ServiceAccount`; an `AgentQueue` (SQS + DLQ); a `CheckpointTable` (DynamoDB; none for an S3
    prefix); a `WorkloadIdentity` whose policy lists exactly the queue, the checkpoint store and the declared AWS
    grants; a `ConfigMap` (`agent.json`); a `Deployment` on the agent NodePool (no replicas: KEDA owns them); an
    `SqsScaledObject`; an egress `NetworkPolicy` for the agent's pods and, per in-cluster peer, an ingress
    `NetworkPolicy` in the peer's namespace admitting this agent."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: AgentWorkloadProps) -> None:
        super().__init__(scope, id)
        p = props
        self.props = p
        name = f"agent-{p.name}"
        self.workload_name = name
        aws_name = f"{p.prefix}-agent-{p.name}"
        if len(aws_name) > IAM_ROLE_NAME_MAX:
            raise ValueError(f"AgentWorkload {p.name}: role name {aws_name!r} is {len(aws_name)} characters; IAM allows "
                             f"{IAM_ROLE_NAME_MAX}. Shorten the agent or environment name")
        if p.checkpoint_store == "s3" and not (p.checkpoint_bucket and p.checkpoint_prefix):
            raise ValueError(f"AgentWorkload {p.name}: an s3 checkpoint store needs checkpoint_bucket and checkpoint_prefix")
        missing = [t for t in p.approval_required if t not in p.tool_urls and not any(g.tool == t for g in p.aws_grants)]
        if missing:
            raise ValueError(f"AgentWorkload {p.name}: approval_required names undeclared tools {missing}")
        if p.approval_required and not p.guardrails_url:
            raise ValueError(f"AgentWorkload {p.name}: tools need approval but no guardrails_url is given")
        self.labels = {**labels(name, "agent", team=p.team), AGENT_LABEL: p.name}
        self.selector = selector(name)
        tags = {"team": p.team, "cost-center": p.cost_center, AGENT_LABEL: p.name}
        meta = {"namespace": p.namespace, "labels": self.labels}

        # -- work and state ------------------------------------------------------------------------
        self.queue = AgentQueue(self, "queue", key=key, props=AgentQueueProps(
            name=aws_name, visibility_timeout_s=p.visibility_timeout_s, max_receives=p.max_receives,
            retention_days=p.retention_days, tags=tags))
        statements = self.queue.grant_consume()
        self.table: CheckpointTable | None = None
        if p.checkpoint_store == "dynamodb":
            self.table = CheckpointTable(self, "checkpoints", key=key, props=CheckpointTableProps(
                name=aws_name, protect=p.protect, tags=tags))
            statements += self.table.grant_read_write()
            store: dict[str, Any] = {"store": "dynamodb", "table": self.table.table_name, "ttl_days": p.checkpoint_ttl_days}
        else:
            arn = f"arn:aws:s3:::{p.checkpoint_bucket}"
            statements += [
                Statement(["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], [f"{arn}/{p.checkpoint_prefix}/*"], sid="Checkpoints"),
                Statement(["s3:ListBucket"], [arn], sid="ListCheckpoints",
                          conditions={"StringLike": {"s3:prefix": [f"{p.checkpoint_prefix}/*"]}}),
            ]
            store = {"store": "s3", "bucket": p.checkpoint_bucket, "prefix": p.checkpoint_prefix}
        for g in sorted(p.aws_grants, key=lambda g: g.tool):
            sid = "Tool" + "".join(part.capitalize() for part in g.tool.split("-"))
            statements.append(Statement(list(g.actions), list(g.resources), sid=sid))

        # -- identity ------------------------------------------------------------------------------
        sa = KubernetesObject(self, "service-account", body={
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, **meta}, "automountServiceAccountToken": False})
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=aws_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=name, statements=statements,
            tags={**tags, "tierwise.io/workload": name}))

        # -- configuration -------------------------------------------------------------------------
        config = {"agent": p.name, "team": p.team, "router_principal": p.router_principal, "region": p.region,
                  "queue_url": self.queue.queue_url, "visibility_timeout_s": p.visibility_timeout_s,
                  "checkpoint": store, "router_url": p.router_url, "models": list(p.models),
                  "tools": dict(sorted(p.tool_urls.items())), "approval_required": sorted(p.approval_required)}
        if p.guardrails_url:
            config["guardrails_url"] = p.guardrails_url
        cm = KubernetesObject(self, "config", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": {CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True) + "\n"}})

        # -- workload ------------------------------------------------------------------------------
        env = [{"name": "TIERWISE_AGENT_CONFIG_PATH", "value": f"{CONFIG_DIR}/{CONFIG_FILE}"},
               {"name": "AWS_REGION", "value": p.region},
               {"name": "TIERWISE_AGENT_HEARTBEAT_PATH", "value": "/tmp/heartbeat"},
               {"name": "TIERWISE_AGENT_SECRETS_DIR", "value": SECRETS_DIR}]
        alive = ["tierwise-agent", "alive", "--max-age-s", str(max(60, p.visibility_timeout_s))]
        container = {
            "name": "agent", "image": p.image, "imagePullPolicy": IMAGE_PULL_POLICY, "env": env,
            "resources": resources(p.cpu, f"{p.memory_mib}Mi"),
            "volumeMounts": [{"name": "config", "mountPath": f"{CONFIG_DIR}/{CONFIG_FILE}", "subPath": CONFIG_FILE, "readOnly": True},
                             {"name": "router-key", "mountPath": SECRETS_DIR, "readOnly": True},
                             {"name": "tmp", "mountPath": "/tmp"}],
            "securityContext": container_security(),
            # a worker has no port: liveness is a heartbeat the agent loop touches between receives and steps
            "livenessProbe": {"exec": {"command": alive}, "periodSeconds": 30, "failureThreshold": 3},
            "readinessProbe": {"exec": {"command": alive}, "periodSeconds": 30, "failureThreshold": 1},
        }
        self.deployment = KubernetesObject(self, "deployment", body={
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, **meta, "annotations": {DECLARED_EGRESS_ANNOTATION: declaration(p.egress)}},
            "spec": {"selector": {"matchLabels": self.selector},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": self.labels}, "spec": {
                         "serviceAccountName": name, "automountServiceAccountToken": False, "enableServiceLinks": False,
                         "securityContext": pod_security(), "terminationGracePeriodSeconds": 60,
                         "containers": [container], "topologySpreadConstraints": spread(name),
                         "volumes": [{"name": "config", "configMap": {"name": name}},
                                     {"name": "router-key", "secret": {"secretName": p.router_key_secret, "defaultMode": 0o440,
                                                                       "items": [{"key": KEY_SECRET_KEY, "path": KEY_FILE}]}},
                                     {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                         **agent_placement()}}}})
        for d in (sa, cm):
            self.deployment.manifest.node.add_dependency(d.manifest)
        self.scaler = SqsScaledObject(self, "autoscaler", props=SqsScaledObjectProps(
            name=name, namespace=p.namespace, queue_url=self.queue.queue_url, region=p.region,
            min_replicas=p.min_replicas, max_replicas=p.max_replicas, messages_per_replica=p.messages_per_replica,
            labels=self.labels))
        self.scaler.manifest.node.add_dependency(self.deployment.manifest)

        # -- reach ---------------------------------------------------------------------------------
        NetworkPolicy(self, "egress", props=NetworkPolicyProps(
            name=name, namespace=p.namespace, pod_selector=self.selector, egress=egress_rules(p.egress)))
        # the router already admits every team namespace (serving stack); other peers admit this agent explicitly
        for peer in p.egress.services:
            NetworkPolicy(self, f"ingress-{peer.namespace}-{peer.name}", props=NetworkPolicyProps(
                name=f"allow-{name}-to-{peer.name}", namespace=peer.namespace, pod_selector=dict(peer.pod_labels),
                ingress=[{"from": [pods(self.selector, namespace=p.namespace)], "ports": tcp(peer.port)}]))

    @property
    def role_arn(self) -> str:
        return self.identity.role_arn
