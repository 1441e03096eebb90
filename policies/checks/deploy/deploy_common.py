"""What the deploy-semantic checks (TW-DEPLOY-*) read from `cdktf.out/`: Helm releases with their values, the
GPU NodePools' node labels and GPU models, the images every manifest and chart runs, and how nodes reach them.

Static facts come from the package, never from the environment's Python objects: GPU models and MIG profiles
(`tierwise.config.hardware`), registry decisions (`tierwise.config.registries`), chart defaults (the vendored
`values.yaml` of each pinned chart, when present).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from tierwise.config.hardware import FAMILIES, GpuModel
from tierwise.policies.cost import is_gpu_nodepool
from tierwise.policies.engine import Index, Resource, as_list

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$")


# --------------------------------------------------------------------------------------------- Helm releases
@dataclass(frozen=True)
class Release:
    resource: Resource
    values: dict  # our values, merged over the chart's defaults where those are vendored
    defaults_vendored: bool

    @property
    def chart(self) -> str:
        return str(self.resource.body.get("chart", ""))

    @property
    def version(self) -> str:
        return str(self.resource.body.get("version", ""))

    @property
    def name(self) -> str:
        return str(self.resource.body.get("name", ""))


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return over


def chart_defaults(chart: str, version: str) -> dict | None:
    """The vendored `values.yaml` of `chart` at exactly `version` (tierwise_core/charts/, see its sources.json), or None
    when that chart or that version is not vendored."""
    import tierwise

    root = Path(tierwise.__file__).parent / "charts"  # installed package (not resolved: editable installs link files)
    sources = root / "sources.json"
    if not sources.is_file():
        return None
    src = json.loads(sources.read_text()).get(chart) or {}
    f = root / chart / "values.yaml"
    if str(src.get("version", "")).lstrip("v") != version.lstrip("v") or not f.is_file():
        return None
    data = yaml.safe_load(f.read_text()) or {}
    return data if isinstance(data, dict) else None


def chart_app_version(chart: str) -> str:
    """The app version a chart's images default their tag to (`.Chart.AppVersion`): the vendored Chart.yaml's, or
    the released version where git's Chart.yaml is a placeholder (gpu-operator: `main-latest`)."""
    import tierwise

    root = Path(tierwise.__file__).parent / "charts"
    sources = json.loads((root / "sources.json").read_text()) if (root / "sources.json").is_file() else {}
    meta = root / chart / "Chart.yaml"
    app = str((yaml.safe_load(meta.read_text()) or {}).get("appVersion", "")) if meta.is_file() else ""
    return app if app and app != "0.0.0" and "latest" not in app and "devel" not in app else str((sources.get(chart) or {}).get("version", ""))


def subcharts(chart: str) -> set[str]:
    import tierwise

    meta = Path(tierwise.__file__).parent / "charts" / chart / "Chart.yaml"
    deps = (yaml.safe_load(meta.read_text()) or {}).get("dependencies") if meta.is_file() else None
    return {str(d.get("name")) for d in deps or [] if isinstance(d, dict)}


def releases(index: Index) -> list[Release]:
    out = []
    for r in index.of_type("helm_release"):
        ours: dict = {}
        for v in as_list(r.body.get("values")):
            doc = yaml.safe_load(v) if isinstance(v, str) else v
            if isinstance(doc, dict):
                ours = _merge(ours, doc)
        defaults = chart_defaults(str(r.body.get("chart", "")), str(r.body.get("version", "")))
        out.append(Release(r, _merge(defaults, ours) if defaults else ours, defaults is not None))
    return out


def release(index: Index, chart: str) -> Release | None:
    return next((x for x in releases(index) if x.chart == chart), None)


# --------------------------------------------------------------------------------------------- GPU node pools
def pool_labels(np: Resource) -> dict[str, str]:
    tmpl = (np.manifest.get("spec") or {}).get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def pool_gpus(np: Resource) -> list[GpuModel]:
    """The GPU models the NodePool's instance-family requirement admits."""
    tspec = ((np.manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
    out: dict[str, GpuModel] = {}
    for req in as_list(tspec.get("requirements")):
        if isinstance(req, dict) and req.get("key") == "karpenter.k8s.aws/instance-family" and req.get("operator") == "In":
            out.update({FAMILIES[f].gpu.name: FAMILIES[f].gpu for f in as_list(req.get("values")) if f in FAMILIES})
    return [out[k] for k in sorted(out)]


def gpu_nodepools(index: Index) -> list[Resource]:
    return [np for np in index.k8s("NodePool", "karpenter.sh") if is_gpu_nodepool(np)]


# --------------------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImageUse:
    image: str  # full reference as the node will pull it
    owner: Resource
    where: str  # value path or container name


def _image_specs(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Image references in a chart's values: {registry, repository, tag}, {repository, image, version} (NVIDIA) or
    {repository, tag}. A subtree with `enabled: false` is skipped (the chart does not render it)."""
    if isinstance(node, dict):
        if node.get("enabled") is False:
            return
        repo = node.get("repository")
        if isinstance(repo, str) and repo and ("tag" in node or "image" in node or "version" in node or "digest" in node
                                                 or "/" in repo):
            ref = repo
            if isinstance(node.get("registry"), str) and node["registry"]:
                ref = f"{node['registry']}/{repo}"
            if isinstance(node.get("image"), str) and node["image"]:
                ref = f"{ref}/{node['image']}"
            tag = node.get("tag") or node.get("version") or ""
            yield (f"{ref}:{tag}" if tag and isinstance(tag, str) else ref), path
        for k, v in node.items():
            yield from _image_specs(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _image_specs(v, f"{path}[{i}]")


#: Chart components rendered only under another switch (chart templates at the pinned versions): GPU operator
#: sandbox components need `sandboxWorkloads.enabled`, its NFD subchart `nfd.enabled`; Kueue's UI `enableKueueViz`.
_GATED: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {
    "gpu-operator": {("sandboxWorkloads", "enabled"): ("vgpuManager", "vgpuDeviceManager", "vfioManager", "kataManager",
                                                       "sandboxDevicePlugin", "ccManager"),
                     ("nfd", "enabled"): ("node-feature-discovery",)},
    "kueue": {("enableKueueViz",): ("kueueViz",)},
}


def _switch(values: dict, path: tuple[str, ...]) -> bool:
    node: Any = values
    for k in path:
        node = node.get(k) if isinstance(node, dict) else None
    return bool(node)


def release_images(rel: Release) -> Iterator[ImageUse]:
    values = dict(rel.values)
    for switch, components in _GATED.get(rel.chart, {}).items():
        if not _switch(values, switch):
            for c in components:
                values.pop(c, None)
    app, subs = (chart_app_version(rel.chart), subcharts(rel.chart)) if rel.defaults_vendored else ("", set())
    for ref, where in _image_specs(values, ""):
        untagged = ":" not in ref.rsplit("/", 1)[-1] and "@" not in ref
        if untagged and app and where.split(".")[0] not in subs:
            ref = f"{ref}:{app}"  # the templates default the tag to .Chart.AppVersion
        yield ImageUse(ref, rel.resource, where)


def _containers(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for c in as_list(node.get(key)):
                if isinstance(c, dict) and isinstance(c.get("image"), str):
                    yield c["image"], f"{path}.{key}[{c.get('name', '?')}]"
        for k, v in node.items():
            yield from _containers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _containers(v, f"{path}[{i}]")


def manifest_images(index: Index) -> Iterator[ImageUse]:
    for r in index.of_type("kubernetes_manifest"):
        seen = set()
        for image, where in _containers(r.manifest, ""):
            if (image, where) not in seen:
                seen.add((image, where))
                yield ImageUse(image, r, where)


def egress_allowlist(index: Index) -> list[str]:
    out = []
    for rg in index.of_type("aws_networkfirewall_rule_group"):
        for g in as_list(rg.body.get("rule_group")):
            for src in as_list((g or {}).get("rules_source")) if isinstance(g, dict) else []:
                for lst in as_list((src or {}).get("rules_source_list")) if isinstance(src, dict) else []:
                    if isinstance(lst, dict) and lst.get("generated_rules_type") == "ALLOWLIST":
                        out += [str(t) for t in as_list(lst.get("targets")) if isinstance(t, str)]
    return out


def host_allowed(host: str, allowlist: list[str]) -> bool:
    """Network Firewall domain lists: `.example.com` matches the domain and its subdomains, else an exact host."""
    for t in allowlist:
        if t.startswith(".") and (host == t[1:] or host.endswith(t)):
            return True
        if host == t:
            return True
    return False


def dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True)
