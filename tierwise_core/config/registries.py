"""Where every container image the platform runs comes from, and how nodes reach it — decided here, once.

Prod's egress firewall allows `.amazonaws.com` and little else, so nodes pull nothing from the internet.
Every upstream registry is reached one of two ways:

- **cache**: an ECR pull-through cache rule (`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<path>`); ECR
  fetches from upstream on the first pull. ECR supports these upstreams (AWS ECR user guide, "Sync an upstream
  registry"; `CreatePullThroughCacheRule` `upstreamRegistryUrl`): ECR Public, registry.k8s.io and quay.io
  anonymously; Docker Hub, ghcr.io, GitLab and Azure with a Secrets Manager credential.
- **mirror**: ECR does not cache this upstream (nvcr.io is not on that list), so Terraform creates one private
  repository per image (`<prefix>/<path>`, immutable tags) and the images are copied in before deploy by a
  machine that can reach upstream (`tierwise doctor` prints the copy commands). NVIDIA recommends mirroring
  NGC content for production rather than pulling it live.

The policy check TW-DEPLOY-003 proves, from `cdktf.out/` alone, that every image in every manifest and chart
resolves to a rule or repository of this account, or to a host the environment's egress allowlist admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class UpstreamRegistry:
    #: Host as image references name it (Docker Hub references may have no host at all).
    host: str
    mode: Literal["cache", "mirror"]
    #: ECR repository prefix of the cache rule, or of the mirrored repositories.
    prefix: str
    #: `upstreamRegistryUrl` of the cache rule (cache mode only).
    ecr_upstream_url: str = ""
    #: Other spellings of the host in image references.
    aliases: tuple[str, ...] = ()
    #: ECR needs a Secrets Manager credential (`ecr-pullthroughcache/...`) for this upstream.
    needs_credentials: bool = False


UPSTREAMS: tuple[UpstreamRegistry, ...] = (
    UpstreamRegistry("public.ecr.aws", "cache", "ecr-public", "public.ecr.aws"),
    UpstreamRegistry("registry.k8s.io", "cache", "k8s", "registry.k8s.io"),
    UpstreamRegistry("quay.io", "cache", "quay", "quay.io"),
    UpstreamRegistry("ghcr.io", "cache", "ghcr", "ghcr.io", needs_credentials=True),
    UpstreamRegistry("docker.io", "cache", "docker-hub", "registry-1.docker.io",
                     aliases=("registry-1.docker.io", "index.docker.io"), needs_credentials=True),
    UpstreamRegistry("nvcr.io", "mirror", "nvcr"),
)
DOCKER_HUB = "docker.io"


def split_reference(ref: str) -> tuple[str, str]:
    """`ghcr.io/kedacore/keda:2.20.2` -> (`ghcr.io`, `kedacore/keda:2.20.2`); a Docker Hub reference without a
    host gets `docker.io` and, for official images, the `library/` namespace."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    path = ref if "/" in ref.split(":")[0].split("@")[0] else f"library/{ref}"
    return DOCKER_HUB, path


def upstream_for(host: str) -> UpstreamRegistry | None:
    for u in UPSTREAMS:
        if host == u.host or host in u.aliases:
            return u
    return None
