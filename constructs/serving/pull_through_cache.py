"""`EcrPullThroughCache`: an ECR pull-through cache rule that mirrors one upstream registry into this account.

Nodes whose egress allowlist does not include the upstream registry (prod: only `.amazonaws.com`) pull
`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<repository>:<tag>` through the ECR interface
endpoints instead; ECR fetches the image from upstream on the first pull and caches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from constructs import Construct
from cdktn_provider_aws.data_aws_secretsmanager_secret import DataAwsSecretsmanagerSecret
from cdktn_provider_aws.ecr_pull_through_cache_rule import EcrPullThroughCacheRule
from cdktn_provider_aws.iam_role_policy import IamRolePolicy

from ..iam import Statement, policy_document

#: AWS requires the upstream credential secret's name to start with this prefix.
CREDENTIAL_SECRET_PREFIX = "ecr-pullthroughcache/"
DOCKER_HUB = "registry-1.docker.io"
_PREFIX = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
#: Registries the image references name in their first component (Docker Hub has no host part).
_HOST_ALIASES = {DOCKER_HUB: ("docker.io", "index.docker.io", "registry-1.docker.io")}


class IRole(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class EcrPullThroughCacheProps:
    #: Repository prefix in this registry (`<prefix>/<upstream repository>`), 2-30 characters.
    prefix: str
    #: Upstream registry host, e.g. `registry-1.docker.io`, `quay.io`, `registry.k8s.io`.
    upstream_registry_url: str
    account_id: str
    region: str
    #: Secrets Manager secret (by name, `ecr-pullthroughcache/...`) holding `username`/`accessToken` for the
    #: upstream; anonymous pulls when omitted (Docker Hub requires credentials).
    credential_secret_name: str | None = None


class EcrPullThroughCache(Construct):
    """Creates `aws_ecr_pull_through_cache_rule` and, when a credential secret is named, reads its ARN with a
    `aws_secretsmanager_secret` data source (the value never appears in config or state of this stack)."""

    def __init__(self, scope: Construct, id: str, *, props: EcrPullThroughCacheProps) -> None:
        super().__init__(scope, id)
        p = props
        if not (2 <= len(p.prefix) <= 30 and _PREFIX.match(p.prefix)):
            raise ValueError(f"EcrPullThroughCache: prefix must be 2-30 chars of lowercase path segments, got {p.prefix!r}")
        if p.upstream_registry_url == DOCKER_HUB and not p.credential_secret_name:
            raise ValueError("EcrPullThroughCache: Docker Hub rules need credential_secret_name (AWS requires credentials)")
        if p.credential_secret_name is not None and not p.credential_secret_name.startswith(CREDENTIAL_SECRET_PREFIX):
            raise ValueError(f"EcrPullThroughCache: credential secret name must start with {CREDENTIAL_SECRET_PREFIX!r} "
                             f"(required by AWS), got {p.credential_secret_name!r}")
        self.props = p
        credential_arn = None
        if p.credential_secret_name:
            credential_arn = DataAwsSecretsmanagerSecret(self, "credential", name=p.credential_secret_name).arn
        self.rule = EcrPullThroughCacheRule(self, "rule", ecr_repository_prefix=p.prefix,
                                            upstream_registry_url=p.upstream_registry_url, credential_arn=credential_arn)
        self._grants = 0

    @property
    def registry(self) -> str:
        return f"{self.props.account_id}.dkr.ecr.{self.props.region}.amazonaws.com"

    @property
    def repository_arn_pattern(self) -> str:
        return f"arn:aws:ecr:{self.props.region}:{self.props.account_id}:repository/{self.props.prefix}/*"

    def image(self, upstream_ref: str) -> str:
        """The cached reference of an upstream image: `vllm/vllm-openai:v0.11.0` (Docker Hub) becomes
        `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/vllm/vllm-openai:v0.11.0`. Raises when the
        reference names another registry than this rule's upstream."""
        first, _, rest = upstream_ref.partition("/")
        is_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
        upstream = self.props.upstream_registry_url
        if is_host:
            if first != upstream and first not in _HOST_ALIASES.get(upstream, ()):
                raise ValueError(f"EcrPullThroughCache {self.props.prefix}: {upstream_ref!r} is not on {upstream}")
            path = rest
        else:
            if upstream != DOCKER_HUB:
                raise ValueError(f"EcrPullThroughCache {self.props.prefix}: {upstream_ref!r} is a Docker Hub reference; "
                                 f"this rule mirrors {upstream}")
            path = upstream_ref
        if upstream == DOCKER_HUB and "/" not in path.split(":")[0].split("@")[0]:
            path = f"library/{path}"  # official images live under library/
        return f"{self.registry}/{self.props.prefix}/{path}"

    def grant_pull(self, role: IRole) -> IamRolePolicy:
        """Let a node role import upstream images into (and create) repositories under this rule's prefix. Plain
        pulls are already allowed by the node's ECR read-only policy."""
        self._grants += 1
        stmt = Statement(["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"], [self.repository_arn_pattern],
                         sid="PullThroughCacheImport")
        return IamRolePolicy(self, f"grant-{self._grants}", role=role.name,
                             name=f"pull-through-{self.props.prefix.replace('/', '-')}", policy=policy_document([stmt]))
