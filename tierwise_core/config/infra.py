"""Account-level sections: the Terraform state backend, the network, the EKS cluster and its system
node group (with where system pods are placed), and how nodes reach upstream container registries."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from .base import Strict

FQDN_RE = re.compile(r"^(\*\.|\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# --------------------------------------------------------------------------------------------
# State backend
class StateBackend(Strict):
    """S3 backend for every stack; the key is `<key_prefix>/<env>-<layer>.tfstate`."""

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    key_prefix: str = "tierwise"
    region: str | None = Field(None, description="Defaults to the environment's region.")
    #: S3-native state locking (Terraform >= 1.10). Set `dynamodb_table` instead for older runners.
    use_lockfile: bool = True
    dynamodb_table: str | None = None
    kms_key_id: str | None = None


# --------------------------------------------------------------------------------------------
# Network
class Network(Strict):
    vpc_cidr: str = "10.40.0.0/16"
    #: FQDNs the cluster may reach through AWS Network Firewall. `.example.com` allows subdomains.
    egress_allowlist: list[str] = Field(default_factory=list)
    flow_log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 90
    #: Interface endpoints in every private subnet; traffic to AWS APIs never leaves the VPC.
    interface_endpoints: list[str] = Field(
        default_factory=lambda: ["bedrock-runtime", "bedrock", "ecr.api", "ecr.dkr", "sts", "logs", "eks", "eks-auth", "sqs"]
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"vpc_cidr must be an IPv4 /16../20 network, got {v!r}")
        return v

    @field_validator("egress_allowlist")
    @classmethod
    def _fqdns(cls, v: list[str]) -> list[str]:
        for d in v:
            if not FQDN_RE.match(d):
                raise ValueError(f"{d!r} is not a domain name (use 'api.example.com' or '.example.com' for subdomains)")
        if len(set(v)) != len(v):
            raise ValueError("egress_allowlist has duplicate entries")
        return v


# --------------------------------------------------------------------------------------------
# Cluster
class SystemNodeGroup(Strict):
    instance_types: list[str] = Field(default_factory=lambda: ["m7i.large"])
    min_size: Annotated[int, Field(ge=1)] = 2
    max_size: Annotated[int, Field(ge=1)] = 4
    desired_size: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _bounds(self) -> SystemNodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"need min_size <= desired_size <= max_size, got {self.min_size}/{self.desired_size}/{self.max_size}")
        return self


class Cluster(Strict):
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.(3[2-9]|[4-9][0-9])$")] = "1.34"
    endpoint_public_access: bool = False
    endpoint_public_access_cidrs: list[str] = Field(default_factory=list)
    #: IAM principals granted cluster-admin through EKS access entries (no aws-auth ConfigMap).
    admin_principal_arns: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")]] = Field(
        default_factory=list
    )
    log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 90
    system_node_group: SystemNodeGroup = SystemNodeGroup()

    @model_validator(mode="after")
    def _public(self) -> Cluster:
        if self.endpoint_public_access and not self.endpoint_public_access_cidrs:
            raise ValueError("endpoint_public_access needs endpoint_public_access_cidrs (never 0.0.0.0/0 by default)")
        return self



    @property
    def system_placement(self) -> Placement:
        """Where cluster add-ons and platform services run: the system node group's label and taint."""
        return SYSTEM_PLACEMENT


@dataclass(frozen=True)
class Placement:
    """Node labels a pod selects and taints it tolerates (`operator: Exists`), spelled as Kubernetes wants them."""

    labels: tuple[tuple[str, str], ...]
    tolerated_taints: tuple[str, ...]

    @property
    def node_selector(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def tolerations(self) -> list[dict[str, str]]:
        return [{"key": k, "operator": "Exists"} for k in self.tolerated_taints]

    def helm_values(self) -> dict:
        """`{"nodeSelector": ..., "tolerations": [...]}`: fresh objects, safe to merge into chart values."""
        return {"nodeSelector": self.node_selector, "tolerations": self.tolerations}

    def node_affinity(self) -> dict:
        """The same selector as a required node affinity (for charts that take `affinity`, not `nodeSelector`)."""
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in self.labels]}]}}}


#: The system node group's label and taint (constructs/cluster/system_node_group.py sets them on the nodes).
SYSTEM_PLACEMENT = Placement(labels=(("tierwise.io/node-role", "system"),), tolerated_taints=("CriticalAddonsOnly",))


# --------------------------------------------------------------------------------------------
# Container images
SecretName = Annotated[str, Field(pattern=r"^ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]{1,480}$")]


class ImageSources(Strict):
    """How nodes reach upstream registries: ECR pull-through caches where ECR supports the upstream, private mirror
    repositories where it does not (tierwise.config.registries decides which; TW-DEPLOY-003 checks every image)."""

    #: Secrets Manager secrets (by name; AWS requires the `ecr-pullthroughcache/` prefix) holding `username` and
    #: `accessToken` for the upstreams ECR only caches with credentials. Created out of band, never in YAML.
    docker_hub_credentials_secret: SecretName = "ecr-pullthroughcache/docker-hub"
    ghcr_credentials_secret: SecretName = "ecr-pullthroughcache/ghcr"

    @property
    def credential_secrets(self) -> dict[str, str]:
        return {"docker.io": self.docker_hub_credentials_secret, "ghcr.io": self.ghcr_credentials_secret}


