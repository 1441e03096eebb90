"""TW-DEPLOY-003: every image in every manifest and chart is reachable from the nodes: through an ECR pull-through
cache rule or mirror repository of this account, or from a host the egress allowlist admits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from tierwise.config.registries import UPSTREAMS, split_reference
from tierwise.policies.checks.deploy.deploy_common import (
    ECR_HOST, ImageUse, egress_allowlist, host_allowed, manifest_images, release_images, releases)
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result


@dataclass(frozen=True)
class ImageRoute:
    use: ImageUse
    how: str  # "cache <prefix>", "mirror <repo>", "repository <name>", "egress <host>", "" when unreachable
    why: str = ""


def _strip_tag(path: str) -> str:
    path = path.split("@")[0]
    head, _, last = path.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


def route_images(index: Index) -> tuple[list[ImageRoute], list[str]]:
    """How each image is pulled, and the releases whose chart defaults could not be read (their default images
    are then unchecked)."""
    rules = {str(r.body.get("ecr_repository_prefix")).strip("/"): r for r in index.of_type("aws_ecr_pull_through_cache_rule")}
    repos = {str(r.body.get("name")): r for r in index.of_type("aws_ecr_repository")}
    mirrored_prefixes = {p for p in rules}  # cache prefixes; mirror repositories are matched by exact name
    allow = egress_allowlist(index)
    region = str(index.meta.get("region", ""))
    uses = list(manifest_images(index))
    unvendored = []
    for rel in releases(index):
        uses += list(release_images(rel))
        if not rel.defaults_vendored:
            unvendored.append(f"{rel.resource.address} ({rel.chart} {rel.version})")
    out = []
    for u in uses:
        img = u.image
        if "${" in img:
            repo = index.resolve(u.owner.stack, img, "aws_ecr_repository")
            out.append(ImageRoute(u, f"repository {repo.body.get('name')}" if repo else "",
                                  "" if repo else "a Terraform reference that is not an ECR repository of this synth"))
            continue
        host, path = split_reference(img)
        m = ECR_HOST.match(host)
        if m:
            if region and m.group(2) != region:
                out.append(ImageRoute(u, "", f"ECR registry in {m.group(2)}, but the environment is in {region}"))
                continue
            name = _strip_tag(path)
            prefix = next((p for p in sorted(mirrored_prefixes, key=len, reverse=True) if name.startswith(p + "/")), None)
            upstream = next((x for x in UPSTREAMS if name.startswith(x.prefix + "/")), None)
            if name in repos:
                how = "mirror" if upstream is not None and upstream.mode == "mirror" else "repository"
                out.append(ImageRoute(u, f"{how} {name}"))
            elif prefix is not None:
                out.append(ImageRoute(u, f"cache {prefix} <- {rules[prefix].body.get('upstream_registry_url')}"))
            elif upstream is not None:
                out.append(ImageRoute(u, "", f"{name!r} is under the {upstream.host} {upstream.mode} prefix "
                                             f"{upstream.prefix!r}, but this synth has no {'repository ' + repr(name) if upstream.mode == 'mirror' else 'cache rule for it'}"))
            else:
                # an image the environment names on its own account's registry (e.g. an agent's image): reachable
                # through the ECR endpoints; the repository itself is managed outside this blueprint.
                out.append(ImageRoute(u, f"account ECR {name} (managed outside this synth)"))
        elif host_allowed(host, allow):
            out.append(ImageRoute(u, f"egress {host}"))
        else:
            out.append(ImageRoute(u, "", f"{host} is neither behind an ECR cache rule or mirror nor in the egress allowlist "
                                         f"({', '.join(allow) or 'empty'})"))
    return out, unvendored


class ImagesReachable:
    meta = CheckMeta(
        id="TW-DEPLOY-003",
        title="Every container image is reachable through ECR (cache or mirror) or an allowlisted registry",
        severity="HIGH",
        categories=("DEPLOY", "NETWORK", "SUPPLY-CHAIN"),
        resource_types=("kubernetes_manifest", "helm_release"),
        rationale="With egress limited to an allowlist, a pod whose image lives on a registry nodes cannot reach sits in "
                  "ImagePullBackOff; an atomic Helm release then rolls the whole controller back.",
        fix="Route the image through `ImageSources` (tierwise.config.registries decides cache or mirror per upstream) "
            "or add its registry host to network.egress_allowlist.",
        protects="deployability and supply chain: every image comes through this account's ECR or an allowlisted host",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        routes, unvendored = route_images(index)
        for r in routes:
            if r.how:
                yield result(m, PASS, r.use.owner, f"{r.use.owner.address} {r.use.where}: {r.use.image} via {r.how}",
                             finding=f"{r.use.where}::{r.use.image}")
            else:
                yield result(m, FAIL, r.use.owner, f"{r.use.owner.address} {r.use.where}: {r.use.image}: {r.why}; point it "
                                                  "at ImageSources (tierwise.config.registries) or add its host to "
                                                  "network.egress_allowlist",
                             finding=f"{r.use.where}::{r.use.image}")
        for rel in unvendored:
            yield result(m, UNKNOWN, None, f"{rel}: the chart's values.yaml is not vendored, so images it sets by default "
                                           "were not checked", address=rel.split(" ")[0], finding=f"defaults::{rel}")
