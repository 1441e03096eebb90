"""`ValkeyCache`: the ElastiCache (Valkey) replication group holding the router's shared budget and
rate-limit state, reachable only from the cluster's nodes."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.data_aws_secretsmanager_secret_version import DataAwsSecretsmanagerSecretVersion
from cdktn_provider_aws.elasticache_replication_group import ElasticacheReplicationGroup
from cdktn_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup
from cdktn_provider_aws.security_group import SecurityGroup

from ..jsii_structs import struct_list
from .data_bucket import IKmsKey

PORT = 6379


@dataclass(frozen=True)
class ValkeyCacheProps:
    name: str
    vpc_id: str
    subnet_ids: list[str]
    #: Security group of the pods' nodes (the EKS cluster security group); the only allowed client.
    client_security_group_id: str
    node_type: str = "cache.t4g.small"
    #: Read replicas besides the primary; with one or more, failover is automatic and Multi-AZ.
    replicas: int = 1
    engine_version: str = "8.0"
    snapshot_retention_days: int = 1
    #: Secrets Manager secret (by name, created at deploy time, never in YAML) whose current value is the AUTH
    #: token clients present over TLS; `<name>/valkey-auth-token` when omitted. Read at plan time, so it must
    #: exist before the first plan; the router's `redis-url` Kubernetes Secret carries the same token.
    auth_token_secret_name: str | None = None


class ValkeyCache(Construct):
    """Creates an `aws_security_group` (6379 from the client group only, no egress), an
    `aws_elasticache_subnet_group`, a `aws_secretsmanager_secret_version` data source (the AUTH token, by
    secret name) and an `aws_elasticache_replication_group` (Valkey, TLS in transit, AUTH token required,
    KMS at rest; automatic failover and Multi-AZ when it has replicas)."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: ValkeyCacheProps) -> None:
        super().__init__(scope, id)
        p = props
        if not 0 <= p.replicas <= 5:
            raise ValueError(f"ValkeyCache {p.name}: replicas must be 0..5, got {p.replicas}")
        self.security_group = SecurityGroup(
            self, "sg", name=f"{p.name}-valkey", description="Valkey: router budget state, from cluster nodes only",
            vpc_id=p.vpc_id, egress=[],
            ingress=struct_list([{"description": "Valkey from cluster nodes", "protocol": "tcp", "from_port": PORT,
                                  "to_port": PORT, "security_groups": [p.client_security_group_id]}]))
        subnets = ElasticacheSubnetGroup(self, "subnets", name=f"{p.name}-valkey", subnet_ids=p.subnet_ids,
                                         description="private subnets of the cluster")
        ha = p.replicas > 0
        self.auth_token_secret_name = p.auth_token_secret_name or f"{p.name}/valkey-auth-token"
        token = DataAwsSecretsmanagerSecretVersion(self, "auth-token", secret_id=self.auth_token_secret_name)
        self.group = ElasticacheReplicationGroup(
            self, "group", replication_group_id=f"{p.name}-budgets", description="tierwise router budget and rate-limit state",
            engine="valkey", engine_version=p.engine_version, node_type=p.node_type, num_cache_clusters=1 + p.replicas,
            automatic_failover_enabled=ha, multi_az_enabled=ha, port=PORT, subnet_group_name=subnets.name,
            security_group_ids=[self.security_group.id], at_rest_encryption_enabled="true", kms_key_id=key.key_arn,
            transit_encryption_enabled=True, auth_token=token.secret_string, snapshot_retention_limit=p.snapshot_retention_days,
            auto_minor_version_upgrade="true", apply_immediately=False)

    @property
    def primary_endpoint(self) -> str:
        return self.group.primary_endpoint_address
