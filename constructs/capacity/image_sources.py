"""`ImageSources`: the one place nodes get container images from — ECR pull-through cache rules for every
upstream ECR can cache, and private mirror repositories for the images of upstreams it cannot (nvcr.io).

Which upstream is reached how is decided in `tierwise.config.registries`; this construct only builds it.
Every chart value and manifest image in the stacks is rewritten through `image()`/`repository()`, so a
reference to an upstream this construct does not serve fails at synth, and TW-DEPLOY-003 re-proves it on
`cdktf.out/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from tierwise.config.registries import UPSTREAMS, UpstreamRegistry, split_reference, upstream_for

from ..serving.data_bucket import IKmsKey
from ..serving.ecr_repository import EcrRepository, EcrRepositoryProps
from ..serving.pull_through_cache import EcrPullThroughCache, EcrPullThroughCacheProps, IRole


@dataclass(frozen=True)
class ImageSourcesProps:
    account_id: str
    region: str
    #: upstream host -> Secrets Manager secret name (`ecr-pullthroughcache/...`) for upstreams that need one.
    credential_secrets: dict[str, str] = field(default_factory=dict)
    #: Upstream references (`nvcr.io/nvidia/gpu-operator:v25.10.1`) of mirror-mode upstreams to create repositories for.
    mirrored: tuple[str, ...] = ()
    protect: bool = True


class ImageSources(Construct):
    """Creates one `aws_ecr_pull_through_cache_rule` per cache-mode upstream and one `aws_ecr_repository` per
    mirrored image path."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: ImageSourcesProps) -> None:
        super().__init__(scope, id)
        p = props
        self.props = p
        self.caches: dict[str, EcrPullThroughCache] = {}
        for u in UPSTREAMS:
            if u.mode != "cache":
                continue
            secret = p.credential_secrets.get(u.host)
            if u.needs_credentials and not secret:
                raise ValueError(f"ImageSources: {u.host} needs a credential secret (images.credential_secrets)")
            self.caches[u.host] = EcrPullThroughCache(self, f"cache-{u.prefix}", props=EcrPullThroughCacheProps(
                prefix=u.prefix, upstream_registry_url=u.ecr_upstream_url, account_id=p.account_id, region=p.region,
                credential_secret_name=secret if u.needs_credentials else None))
        self.mirror_paths: set[str] = set()
        for ref in sorted(set(p.mirrored)):
            host, path = split_reference(ref)
            u = self._upstream(host, ref)
            if u.mode != "mirror":
                raise ValueError(f"ImageSources: {ref!r} is on {host}, which is pulled through a cache, not mirrored")
            repo_path = _strip_tag(path)
            if repo_path in self.mirror_paths:
                continue
            self.mirror_paths.add(repo_path)
            EcrRepository(self, f"mirror-{u.prefix}-{repo_path.replace('/', '-')}", key=key, props=EcrRepositoryProps(
                name=f"{u.prefix}/{repo_path}", protect=p.protect))

    @property
    def registry(self) -> str:
        return f"{self.props.account_id}.dkr.ecr.{self.props.region}.amazonaws.com"

    @staticmethod
    def _upstream(host: str, ref: str) -> UpstreamRegistry:
        u = upstream_for(host)
        if u is None:
            raise ValueError(f"ImageSources: {ref!r} names registry {host!r}, which tierwise.config.registries does not "
                             "decide; add it there (cache if ECR supports it, else mirror)")
        return u

    def image(self, ref: str) -> str:
        """The reference nodes pull for upstream image `ref` (tag or digest included)."""
        host, path = split_reference(ref)
        u = self._upstream(host, ref)
        if u.mode == "cache":
            return self.caches[u.host].image(ref)
        if _strip_tag(path) not in self.mirror_paths:
            raise ValueError(f"ImageSources: {ref!r} is not in the mirrored images; add it to `mirrored`")
        return f"{self.registry}/{u.prefix}/{path}"

    def repository(self, upstream_repository: str) -> str:
        """For charts that take a repository (or a repository prefix) and a tag separately:
        `registry.k8s.io/kueue/kueue` -> `<registry>/k8s/kueue/kueue`."""
        host, path = split_reference(upstream_repository)
        u = self._upstream(host, upstream_repository)
        if u.mode == "mirror" and not any(m == path or m.startswith(path + "/") for m in self.mirror_paths):
            raise ValueError(f"ImageSources: no mirrored image under {upstream_repository!r}")
        return f"{self.registry}/{u.prefix}/{path}"

    def registry_and_path(self, upstream_repository: str) -> tuple[str, str]:
        """For charts that take `registry` and `repository` apart: `ghcr.io/kedacore/keda` -> (`<registry>`, `ghcr/kedacore/keda`)."""
        full = self.repository(upstream_repository)
        return self.registry, full[len(self.registry) + 1:]

    def grant_pull(self, role: IRole) -> None:
        """Let a node role import upstream images into the cache rules' repositories (first pull creates them)."""
        for cache in self.caches.values():
            cache.grant_pull(role)


def _strip_tag(path: str) -> str:
    path = path.split("@")[0]
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        path = path[: path.rfind(":")]
    return path
