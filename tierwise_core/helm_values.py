"""Values truth for every `helm_release`: the Helm analogue of `tierwise.schemas`.

Each release's values are checked offline against the chart files vendored in `tierwise/charts/<chart>/`
(values.yaml, values.schema.json, the templates that consume our keys; see that folder's README):

- **unknown key**: a key that is not in the chart's values.yaml, unless its parent map is *open* (the
  templates pass it through whole; `tierwise-contract.yaml` lists those maps with the template text that
  proves it). Helm itself ignores unknown keys silently, so a misspelling never fails a deploy;
- **type**: a value whose kind (map, list, string, number, boolean) differs from the chart default's,
  e.g. a map where the chart renders a YAML string with `fromYaml`. A Terraform reference (`${...}`)
  is a string only known at apply time and is not judged against a non-string default;
- **schema**: the coalesced values (chart defaults + ours) against the chart's `values.schema.json`;
- **embedded documents**, each against its own upstream type at the version the chart deploys: Kueue's
  manager Configuration and feature gates, the GPU operator's MIG-manager and device-plugin configs
  (ConfigMaps named in the values, looked up among the stack's manifests).

`check_release(release, manifests=...)` is the API (`tierwise doctor` calls it); `iter_helm_releases`
walks a synthesized `cdktf.out/`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .charts.gotypes import Validator, kind_of, parse_go

CHARTS_DIR = Path(__file__).resolve().parent / "charts"
_TF_REF = re.compile(r"\$\{")


@dataclass(frozen=True)
class Finding:
    """One problem in a release's values: `path` is the dotted key path (`managerConfig.x`), `message` says
    what is wrong, the value seen and what the chart expects."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(values)'}: {self.message}"


@dataclass(frozen=True)
class VendoredChart:
    name: str
    version: str
    folder: Path
    defaults: dict[str, Any]
    schema: dict[str, Any] | None
    open_paths: frozenset[tuple[str, ...]]
    sources: dict[str, Any]
    #: values the vendored templates wrap in `required "message" .Values.x` -> message
    required: dict[str, str]

    def text(self, relative: str) -> str:
        return (self.folder / relative).read_text(encoding="utf-8")


@cache
def vendored_charts() -> dict[tuple[str, str], VendoredChart]:
    """(chart name, chart version) -> its vendored files, loaded once per process."""
    sources = json.loads((CHARTS_DIR / "sources.json").read_text())
    out = {}
    for name, src in sources.items():
        folder = CHARTS_DIR / name
        schema_file = folder / "values.schema.json"
        contract = yaml.safe_load((folder / "tierwise-contract.yaml").read_text()) or {}
        defaults = yaml.safe_load((folder / "values.yaml").read_text()) or {}
        # A bundled subchart gets the parent's block under its name (or alias) merged over its own defaults.
        for dep in (yaml.safe_load((folder / "Chart.yaml").read_text()) or {}).get("dependencies") or []:
            sub = folder / "charts" / dep["name"] / "values.yaml"
            if sub.exists():
                key = dep.get("alias") or dep["name"]
                defaults[key] = deep_merge(yaml.safe_load(sub.read_text()) or {}, defaults.get(key) or {})
        out[(name, src["version"])] = VendoredChart(
            name=name, version=src["version"], folder=folder, defaults=defaults,
            schema=json.loads(schema_file.read_text()) if schema_file.exists() else None,
            open_paths=frozenset(tuple(o["path"].split(".")) for o in contract.get("open", [])),
            sources=src, required=_required(folder))
    return out


def chart_default(chart: str, version: str, dotted: str) -> Any:
    """A default from the vendored values.yaml of `chart` `version` (for values that must restate a default)."""
    found = vendored_charts().get((chart, version))
    if found is None:
        raise LookupError(f"no vendored chart files for {chart} {version}: run tierwise_core/charts/vendor.py for it "
                          f"(vendored: {', '.join(f'{n} {v}' for n, v in sorted(vendored_charts()))})")
    value = _get(found.defaults, dotted)
    if value is None:
        raise LookupError(f"{chart} {version} values.yaml has no {dotted}")
    return value


_REQUIRED = re.compile(r'required\s+"([^"]*)"\s+\(?(?:tpl\s+)?\.Values\.([\w.]+)')


def _required(folder: Path) -> dict[str, str]:
    return {path: msg for t in sorted((folder / "templates").rglob("*")) if t.is_file()
            for msg, path in _REQUIRED.findall(t.read_text(encoding="utf-8"))}


# -- values as Helm sees them ----------------------------------------------------------------------------
def deep_merge(base: dict, over: Mapping) -> dict:
    """`base` with `over` merged in as Helm coalesces values: nested maps merge, any other value replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _set_path(values: dict, dotted: str, value: Any) -> None:
    keys = re.split(r"(?<!\\)\.", dotted)
    node = values
    for k in keys[:-1]:
        node = node.setdefault(k.replace("\\.", "."), {})
    node[keys[-1].replace("\\.", ".")] = value


def release_values(release: Mapping[str, Any]) -> dict[str, Any]:
    """The values one `helm_release` passes: its `values` documents merged in order, then `set`/`set_list`."""
    merged: dict[str, Any] = {}
    for doc in release.get("values") or []:
        loaded = yaml.safe_load(doc) if isinstance(doc, str) else doc
        if loaded is not None:
            if not isinstance(loaded, dict):
                raise ValueError(f"helm_release {release.get('name')}: a values document is a {kind_of(loaded)}, not a map")
            merged = deep_merge(merged, loaded)
    for s in release.get("set") or []:
        _set_path(merged, s["name"], s.get("value"))
    for s in release.get("set_list") or []:
        _set_path(merged, s["name"], list(s.get("value") or []))
    return merged


# -- generic checks -----------------------------------------------------------------------------------
def _fmt(path: tuple[str, ...]) -> str:
    return ".".join(f"[{k!r}]" if "." in k else k for k in path)


def _is_open(chart: VendoredChart, path: tuple[str, ...]) -> bool:
    return any(path[:len(o)] == o for o in chart.open_paths)


def _walk(chart: VendoredChart, ours: Any, default: Any, path: tuple[str, ...]) -> Iterator[Finding]:
    if default is None:  # the chart leaves the type open (`key:` with no value)
        return
    want, got = kind_of(default), kind_of(ours)
    if isinstance(ours, str) and _TF_REF.search(ours) and want != "string":
        return  # a Terraform reference: resolved at apply time
    if ours is None:
        return  # null removes the key in Helm: always allowed
    if want != got:
        yield Finding(_fmt(path), f"is a {got} but the chart's default is a {want} ({_short(default)}): "
                                  f"pass a {want}")
        return
    if isinstance(ours, dict) and not _is_open(chart, path):
        for k, v in ours.items():
            if k in default:
                yield from _walk(chart, v, default[k], (*path, k))
            elif _is_open(chart, (*path, k)):
                continue  # a value the templates consume whole but values.yaml only documents in a comment
            else:
                known = ", ".join(sorted(map(str, default))) or "(none: the map is empty by default)"
                yield Finding(_fmt((*path, k)), f"unknown key: chart {chart.name} {chart.version} has no such value "
                                                f"(keys here: {known})")


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


def _schema_findings(chart: VendoredChart, values: dict) -> Iterator[Finding]:
    if chart.schema is None:
        return
    coalesced = deep_merge(chart.defaults, values)
    for e in jsonschema.Draft7Validator(chart.schema).iter_errors(coalesced):
        if isinstance(e.instance, str) and _TF_REF.search(e.instance) and e.validator in ("pattern", "format", "enum"):
            continue
        yield Finding(_fmt(tuple(map(str, e.absolute_path))), f"values.schema.json: {e.message}")


# -- embedded documents -------------------------------------------------------------------------------
def _get(values: Mapping, dotted: str) -> Any:
    node: Any = values
    for k in dotted.split("."):
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


@cache
def _kueue_types() -> tuple[Validator, frozenset[str], dict[str, tuple[bool, bool]]]:
    src = CHARTS_DIR / "kueue" / "vendor" / "kueue"
    types = parse_go((src / "apis/config/v1beta2/configuration_types.go").read_text())
    # Types from k8s.io packages that are not vendored: TypeMeta is inlined (apiVersion/kind), durations and
    # resource names are strings; LeaderElection, LabelSelector, DeviceSelector, ExecConfig: any object.
    external = {"metav1.TypeMeta": {"apiVersion": "string", "kind": "string"}, "metav1.Duration": "string",
                "corev1.ResourceName": "string", "resourcev1.QualifiedName": "string",
                "corev1.ResourceList": "map[string]any"}
    frameworks = frozenset(re.findall(r'^\s*//\s+-\s+"([^"]+)"', types.docs["Integrations"], re.M))
    return Validator(types, external), frameworks, _kueue_gates((src / "pkg/features/kube_features.go").read_text())


def _kueue_gates(go: str) -> dict[str, tuple[bool, bool]]:
    """Feature gate -> (default, locked) at the newest spec of `defaultVersionedFeatureGates`."""
    body = go[go.index("var defaultVersionedFeatureGates"):]
    body = body[:body.index("\n}\n")]
    gates: dict[str, tuple[bool, bool]] = {}
    for name, specs in re.findall(r"^\t(\w+): \{\n(.*?)^\t\},", body, re.M | re.S):
        last = [s for s in specs.splitlines() if "Version:" in s][-1]
        gates[name] = ("Default: true" in last, "LockToDefault: true" in last)
    return gates


def _check_gates(gates: Mapping[str, Any], where: str) -> Iterator[Finding]:
    _, _, known = _kueue_types()
    for name, enabled in gates.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            yield Finding(where, f"Kueue 0.19.2 has no feature gate {name!r}: the manager exits on an unknown gate "
                                 f"({len(known)} gates in pkg/features/kube_features.go"
                                 f"{'; close: ' + ', '.join(close) if close else ''})")
        elif known[name][1] and enabled != known[name][0]:
            yield Finding(where, f"Kueue feature gate {name} is locked to {known[name][0]} at 0.19.2; "
                                      f"setting it to {enabled} makes the manager exit")


def _kueue(chart: VendoredChart, values: dict, _ns: str, _manifests) -> Iterator[Finding]:
    gates_list = _get(values, "controllerManager.featureGates")
    if isinstance(gates_list, list):
        for i, g in enumerate(gates_list):
            if not isinstance(g, dict) or set(g) != {"name", "enabled"} or not isinstance(g.get("enabled"), bool):
                yield Finding(f"controllerManager.featureGates[{i}]", f"must be {{name: <gate>, enabled: <bool>}} "
                                                                      f"(the chart renders name=enabled), got {g!r}")
            else:
                yield from (Finding(f"controllerManager.featureGates[{i}].name", f.message)
                            for f in _check_gates({g["name"]: g["enabled"]}, ""))
    path = "managerConfig.controllerManagerConfigYaml"
    raw = _get(values, path)
    if not isinstance(raw, str):
        return  # absent: the chart default applies; a non-string is already a type finding
    default = yaml.safe_load(chart.defaults["managerConfig"]["controllerManagerConfigYaml"])
    try:
        cfg = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        yield Finding(path, f"is not valid YAML: {e}")
        return
    if not isinstance(cfg, dict):
        yield Finding(path, f"must be a YAML map (Kueue Configuration), got {kind_of(cfg)}")
        return
    validator, frameworks, _ = _kueue_types()
    for p, msg in validator.validate(cfg, "Configuration", ""):
        yield Finding(f"{path}{p}", f"Kueue Configuration v1beta2 (strict decoding at start-up): {msg}")
    for k in ("apiVersion", "kind"):
        if cfg.get(k) != default[k]:
            yield Finding(f"{path}.{k}", f"must be {default[k]!r} (the chart default), got {cfg.get(k)!r}")
    missing = sorted(set(default) - set(cfg))
    if missing:
        yield Finding(path, f"replaces the chart's whole default config but drops {', '.join(missing)}: "
                            "start from the chart default and add to it")
    for i, fw in enumerate(_get(cfg, "integrations.frameworks") or []):
        if fw not in frameworks:
            yield Finding(f"{path}.integrations.frameworks[{i}]", f"unknown framework {fw!r} (Kueue 0.19.2: "
                                                                  f"{', '.join(sorted(frameworks))})")
    if isinstance(cfg.get("featureGates"), dict):
        yield from (Finding(f"{path}.featureGates", f.message) for f in _check_gates(cfg["featureGates"], ""))
        if gates_list:
            yield Finding(f"{path}.featureGates", "cannot be used together with controllerManager.featureGates "
                                                  "(--feature-gates): Kueue refuses both")


@cache
def _device_plugin_types() -> Validator:
    src = CHARTS_DIR / "gpu-operator" / "vendor" / "k8s-device-plugin" / "api" / "config" / "v1"
    types = parse_go(*(p.read_text() for p in sorted(src.glob("*.go"))))
    # custom UnmarshalJSON: `devices` is "all", a count or a list; the device-list strategy a string or list
    return Validator(types, {"ReplicatedDevices": "any", "deviceListStrategyFlag": "any", "Duration": "string"})


def _configmap(manifests: Iterable[dict], name: str, namespace: str) -> dict | None:
    for m in manifests:
        meta = m.get("metadata", {})
        if m.get("kind") == "ConfigMap" and meta.get("name") == name and meta.get("namespace") == namespace:
            return m
    return None


def _mig_config(doc: Any, where: str) -> Iterator[Finding]:
    """NVIDIA mig-parted v0.13.1 `api/spec/v1` (its UnmarshalJSON rules: strict fields, required ones)."""
    if not isinstance(doc, dict) or doc.get("version") != "v1":
        yield Finding(where, f"mig-parted config needs version: v1, got {doc!r:.80}")
        return
    for k in set(doc) - {"version", "mig-configs"}:
        yield Finding(f"{where}.{k}", "unexpected field (mig-parted v1 has version, mig-configs)")
    configs = doc.get("mig-configs")
    if not isinstance(configs, dict) or not configs:
        yield Finding(f"{where}.mig-configs", "at least one entry is required")
        return
    for name, entries in configs.items():
        if not isinstance(entries, list) or not entries:
            yield Finding(f"{where}.mig-configs.{name}", "at least one entry is required")
            continue
        for i, e in enumerate(entries):
            at = f"{where}.mig-configs.{name}[{i}]"
            if not isinstance(e, dict):
                yield Finding(at, f"expected a map, got {kind_of(e)}")
                continue
            for k in set(e) - {"device-filter", "devices", "mig-enabled", "mig-devices"}:
                yield Finding(f"{at}.{k}", "unexpected field")
            for k in ("devices", "mig-enabled"):
                if k not in e:
                    yield Finding(at, f"missing required field: {k}")
            dev = e.get("devices")
            if dev is not None and dev != "all" and not (isinstance(dev, list) and all(type(d) is int for d in dev)):
                yield Finding(f"{at}.devices", f"must be 'all' or a list of GPU indexes, got {dev!r}")
            if "mig-enabled" in e and not isinstance(e["mig-enabled"], bool):
                yield Finding(f"{at}.mig-enabled", f"must be a boolean, got {e['mig-enabled']!r}")
            devices = e.get("mig-devices")
            if e.get("mig-enabled") is True and devices is None:
                yield Finding(at, "missing required field 'mig-devices' when 'mig-enabled' is true")
            if e.get("mig-enabled") is False and devices:
                yield Finding(f"{at}.mig-devices", "MIG devices included when 'mig-enabled' is false")
            if devices is not None:
                if not isinstance(devices, dict) or not all(type(v) is int and v >= 0 for v in devices.values()):
                    yield Finding(f"{at}.mig-devices", f"must map MIG profile -> count >= 0, got {devices!r}")
                elif devices and not any(devices.values()):
                    yield Finding(f"{at}.mig-devices", "all counts for all MIG profiles are 0")


def _sharing_config(doc: Any, where: str) -> Iterator[Finding]:
    """NVIDIA k8s-device-plugin v0.18.1 `api/config/v1.Config` (plus its UnmarshalJSON rules)."""
    if not isinstance(doc, dict) or doc.get("version") != "v1":
        yield Finding(where, f"device-plugin config needs version: v1, got {doc!r:.80}")
        return
    for p, msg in _device_plugin_types().validate(doc, "Config", ""):
        yield Finding(f"{where}{p}", f"device plugin config v1: {msg}")
    for kind in ("timeSlicing", "mps"):
        rr = _get(doc, f"sharing.{kind}")
        if rr is None:
            continue
        if not rr.get("resources"):
            yield Finding(f"{where}.sharing.{kind}", "no resources specified")
        for i, r in enumerate(rr.get("resources") or []):
            if isinstance(r, dict) and not (isinstance(r.get("replicas"), int) and r["replicas"] >= 2):
                yield Finding(f"{where}.sharing.{kind}.resources[{i}].replicas",
                              f"number of replicas must be >= 2, got {r.get('replicas')!r}")
            if isinstance(r, dict) and "name" not in r:
                yield Finding(f"{where}.sharing.{kind}.resources[{i}]", "no resource name specified")


def _gpu_operator(chart: VendoredChart, values: dict, ns: str, manifests) -> Iterator[Finding]:
    if manifests is None:
        return
    for key, data_key, check in (("migManager.config", "config.yaml", _mig_config),
                                 ("devicePlugin.config", None, _sharing_config)):
        name, default = _get(values, f"{key}.name"), _get(values, f"{key}.default")
        if not name:
            continue
        cm = _configmap(manifests, name, ns)
        if cm is None:
            yield Finding(f"{key}.name", f"ConfigMap {ns}/{name} is not created next to this release")
            continue
        data = cm.get("data") or {}
        docs = {data_key: data.get(data_key)} if data_key else dict(data)
        names: set[str] = set()
        for k, text in docs.items():
            where = f"{key}.name→ConfigMap {name}[{k}]"
            if text is None:
                yield Finding(where, "key missing (the operator mounts it)")
                continue
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError as e:
                yield Finding(where, f"is not valid YAML: {e}")
                continue
            yield from check(doc, where)
            names |= set(doc.get("mig-configs", {})) if data_key else {k}
        if default and default not in names:
            yield Finding(f"{key}.default", f"{default!r} is not a config in ConfigMap {name} "
                                            f"(has: {', '.join(sorted(names))})")


_EMBEDDED = {"kueue": _kueue, "gpu-operator": _gpu_operator}


# -- API ------------------------------------------------------------------------------------------------
def check_release(release: Mapping[str, Any], *, manifests: Iterable[dict] | None = None) -> list[Finding]:
    """All findings for one `helm_release` resource (its body in cdk.tf.json). `manifests`: the Kubernetes
    objects synthesized next to it (for ConfigMaps its values name); None skips those lookups."""
    chart_name, version = release.get("chart"), release.get("version")
    chart = vendored_charts().get((chart_name, version))
    if chart is None:
        have = ", ".join(f"{n} {v}" for n, v in sorted(vendored_charts()))
        return [Finding("", f"no vendored chart files for {chart_name} {version} (vendored: {have}): vendor it in "
                            "tierwise/charts/ (vendor.py) so its values can be checked")]
    try:
        values = release_values(release)
    except (ValueError, yaml.YAMLError) as e:
        return [Finding("", str(e))]
    findings = list(_walk(chart, values, chart.defaults, ()))
    coalesced = deep_merge(chart.defaults, values)
    findings += [Finding(path, f"the chart requires it: {msg!r}") for path, msg in sorted(chart.required.items())
                 if _get(coalesced, path) in (None, "", {}, [])]
    findings += _schema_findings(chart, values)
    embedded = _EMBEDDED.get(chart.name)
    if embedded is not None:
        findings += embedded(chart, values, release.get("namespace", "default"),
                             list(manifests) if manifests is not None else None)
    return findings


def iter_helm_releases(out_dir: Path) -> Iterator[tuple[str, str, dict, list[dict]]]:
    """(stack, resource address, helm_release body, the stack's Kubernetes objects) for every release in a
    synthesized `cdktf.out/` (or `tierwise synth --out`) folder."""
    from .schemas import iter_manifests

    stacks = sorted(Path(out_dir, "stacks").glob("*/cdk.tf.json"))
    manifests: dict[str, list[dict]] = {}
    for stack, _addr, obj in iter_manifests(Path(out_dir)):
        manifests.setdefault(stack, []).append(obj)
    for f in stacks:
        doc = json.loads(f.read_text())
        for name, body in sorted(doc.get("resource", {}).get("helm_release", {}).items()):
            yield f.parent.name, f"helm_release.{name}", body, manifests.get(f.parent.name, [])
