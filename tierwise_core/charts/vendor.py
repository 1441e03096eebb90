"""Re-vendor the chart files `tierwise.helm_values` checks against (a maintainer tool; not used at run time).

    python tierwise_core/charts/vendor.py /path/to/mirrors

`/path/to/mirrors/<owner>+<repo>/repo` must be a git directory (bare clone) of each upstream repository below.
Every file is copied byte for byte from `git show REF:PATH`; `sources.json` records repository, ref, commit
and the git blob id of each file (the checker's test recomputes the blob ids), and the README's table is
regenerated from it. To bump a chart: change its ref here, run this, then fix what `tests/synth/test_helm_values.py`
reports.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: chart folder -> where it comes from. `files` are relative to the chart path; `extra` are
#: (owner/repo, ref, [repo paths]) of upstream type definitions for the documents a chart embeds,
#: stored under `vendor/<repo>/<path>` (third-party source: code tools skip `vendor/`).
CHARTS: dict[str, dict] = {
    "kueue": {
        "repo": "kubernetes-sigs/kueue", "ref": "v0.19.2", "path": "charts/kueue", "version": "0.19.2",
        "files": ["Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/manager/manager.yaml",
                  "templates/manager/manager-config.yaml", "templates/webhook/manifests.yaml"],
        "license": ["LICENSE"],
        "extra": [("kubernetes-sigs/kueue", "v0.19.2", ["apis/config/v1beta2/configuration_types.go",
                                                        "pkg/features/kube_features.go"])],
        "note": "The release script (`hack/helm-chart-package.sh`) rewrites only the image repository/tag/pullPolicy "
                "(to `registry.k8s.io/kueue/...:v0.19.2`) before `helm package --version 0.19.2`.",
    },
    "karpenter": {
        # The tag's Chart.yaml still says 1.13.0: the release commit on branch release-v1.14.1 (tag + version
        # bump of Chart.yaml and the controller image tag/digest) is what was packaged as chart 1.14.1.
        "repo": "aws/karpenter-provider-aws", "ref": "c88abbbad455186e69e30296c595e474123e9bc1", "tag": "release-v1.14.1",
        "path": "charts/karpenter", "version": "1.14.1",
        "files": ["Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/deployment.yaml"],
        "license": ["LICENSE", "NOTICE"],
        "note": "Ref is the release commit on branch `release-v1.14.1` (tag v1.14.1 + Chart.yaml/values.yaml version "
                "bump); at the tag itself Chart.yaml still says 1.13.0.",
    },
    "gpu-operator": {
        "repo": "NVIDIA/gpu-operator", "ref": "v25.10.1", "path": "deployments/gpu-operator", "version": "v25.10.1",
        "files": ["Chart.yaml", "values.yaml", "templates/clusterpolicy.yaml", "templates/plugin_config.yaml",
                  "templates/mig_config.yaml", "templates/nvidiadriver.yaml",
                  # the bundled subchart (Chart.yaml dependency, condition nfd.enabled): its defaults
                  "charts/node-feature-discovery/Chart.yaml", "charts/node-feature-discovery/values.yaml"],
        "license": ["LICENSE"],
        "extra": [("NVIDIA/mig-parted", "v0.13.1", ["api/spec/v1/spec.go", "pkg/types/mig_config.go", "LICENSE"]),
                  ("NVIDIA/k8s-device-plugin", "v0.18.1", ["api/config/v1/config.go", "api/config/v1/flags.go",
                                                           "api/config/v1/sharing.go", "api/config/v1/replicas.go",
                                                           "api/config/v1/resources.go", "api/config/v1/imex.go",
                                                           "LICENSE"])],
        "note": "Chart.yaml in git says `v1.0.0-devel`; NVIDIA's release packages the tag as chart v25.10.1. "
                "mig-parted v0.13.1 and k8s-device-plugin v0.18.1 are the MIG manager and device plugin versions "
                "this values.yaml deploys (`migManager.version`, `devicePlugin.version`).",
    },
    "dra-driver-nvidia-gpu": {
        "repo": "NVIDIA/k8s-dra-driver-gpu", "ref": "v0.4.0", "path": "deployments/helm/dra-driver-nvidia-gpu",
        "version": "0.4.0",
        "files": ["Chart.yaml", "values.yaml", "LICENSE", "templates/_helpers.tpl", "templates/validation.yaml",
                  "templates/kubeletplugin.yaml", "templates/controller.yaml"],
        "license": [],
    },
    "lws": {
        "repo": "kubernetes-sigs/lws", "ref": "v0.10.0", "path": "charts/lws", "version": "0.10.0",
        "files": ["Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/manager/deployment.yaml"],
        "license": ["LICENSE"],
        "note": "Chart.yaml in git says 0.1.0; the release publishes it as chart 0.10.0 (install docs at the tag: "
                "`--version=0.10.0`), `hack/push-chart.sh` rewriting only the image repository/tag/pullPolicy.",
    },
    "keda": {
        "repo": "kedacore/charts", "ref": "v2.20.2", "path": "keda", "version": "2.20.2",
        "files": ["Chart.yaml", "values.yaml", "templates/manager/deployment.yaml",
                  "templates/metrics-server/deployment.yaml", "templates/webhooks/deployment.yaml"],
        "license": ["LICENSE"],
    },
    "qdrant": {
        "repo": "qdrant/qdrant-helm", "ref": "qdrant-1.19.0", "path": "charts/qdrant", "version": "1.19.0",
        "files": ["Chart.yaml", "values.yaml", "LICENSE", "templates/_helpers.tpl", "templates/configmap.yaml",
                  "templates/statefulset.yaml", "templates/pdb.yaml"],
        "license": [],
    },
    "prometheus": {
        "repo": "prometheus-community/helm-charts", "ref": "prometheus-27.45.0", "path": "charts/prometheus",
        "version": "27.45.0",
        "files": ["Chart.yaml", "values.yaml", "values.schema.json", "templates/_helpers.tpl", "templates/cm.yaml",
                  "templates/deploy.yaml", "templates/service.yaml", "templates/pvc.yaml"],
        "license": ["LICENSE"],
    },
    "nginx-gateway-fabric": {
        "repo": "nginx/nginx-gateway-fabric", "ref": "v2.6.7", "path": "charts/nginx-gateway-fabric", "version": "2.6.7",
        "files": ["Chart.yaml", "values.yaml", "values.schema.json", "templates/_helpers.tpl", "templates/deployment.yaml",
                  "templates/nginxproxy.yaml", "templates/certs-job.yaml"],
        "license": ["LICENSE"],
    },
    "inferencepool": {
        # Chart.yaml in git says 0.0.0: the release packages the tag as chart v1.5.0 (the last tag that ships the
        # chart in this repository; from v1.6.0 it lives in llm-d/llm-d-router). Its EPP library subchart
        # (`inference-extension`, alias inferenceExtension) is bundled from ../epplib.
        "repo": "kubernetes-sigs/gateway-api-inference-extension", "ref": "v1.5.0", "path": "config/charts/inferencepool",
        "version": "v1.5.0",
        "files": ["Chart.yaml", "values.yaml", "templates/inferencepool.yaml", "templates/inferenceextension.yaml"],
        "mapped": [("config/charts/epplib/Chart.yaml", "charts/inference-extension/Chart.yaml"),
                   ("config/charts/epplib/values.yaml", "charts/inference-extension/values.yaml"),
                   ("config/charts/epplib/templates/_deployment.yaml", "charts/inference-extension/templates/_deployment.yaml"),
                   ("config/charts/epplib/templates/_helpers.tpl", "charts/inference-extension/templates/_helpers.tpl")],
        "license": ["LICENSE"],
        "note": "Chart.yaml in git says 0.0.0; the release publishes oci://registry.k8s.io/gateway-api-inference-extension/"
                "charts/inferencepool at the tag's version. The EPP library chart is vendored under charts/inference-extension.",
    },
}


def blob_id(data: bytes) -> str:
    """`git hash-object` of these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _git(mirrors: Path, repo: str, *args: str) -> bytes:
    gitdir = mirrors / repo.replace("/", "+") / "repo"
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True).stdout


def vendor(mirrors: Path) -> dict:
    sources: dict[str, dict] = {}
    for name, spec in CHARTS.items():
        dest = HERE / name
        commit = _git(mirrors, spec["repo"], "rev-parse", f"{spec['ref']}^{{commit}}").decode().strip()
        entries = []
        wanted = [(spec["repo"], spec["ref"], f"{spec['path']}/{f}", f) for f in spec["files"]]
        wanted += [(spec["repo"], spec["ref"], f, f) for f in spec["license"]]
        wanted += [(spec["repo"], spec["ref"], upstream, local) for upstream, local in spec.get("mapped", [])]
        for repo, ref, paths in spec.get("extra", []):
            wanted += [(repo, ref, p, f"vendor/{repo.split('/')[1]}/{p}") for p in paths]
        for repo, ref, upstream, local in wanted:
            data = _git(mirrors, repo, "show", f"{ref}:{upstream}")
            out = dest / local
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            sha = commit if repo == spec["repo"] and ref == spec["ref"] else \
                _git(mirrors, repo, "rev-parse", f"{ref}^{{commit}}").decode().strip()
            label = spec.get("tag", ref) if ref == spec["ref"] else ref
            entries.append({"file": local, "repo": repo, "ref": label, "commit": sha, "path": upstream,
                            "blob": blob_id(data), "bytes": len(data)})
        sources[name] = {"chart": name, "version": spec["version"], "repo": spec["repo"],
                         "tag": spec.get("tag", spec["ref"]), "commit": commit, "path": spec["path"],
                         "note": spec.get("note", ""), "files": entries}
    (HERE / "sources.json").write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
    return sources


def readme_table(sources: dict) -> str:
    rows = ["| folder / file | upstream repo | upstream path | ref (commit) | git blob | bytes |", "|---|---|---|---|---|---|"]
    for name, s in sources.items():
        for e in s["files"]:
            rows.append(f"| `{name}/{e['file']}` | {e['repo']} | `{e['path']}` | {e['ref']} ({e['commit'][:12]}) "
                        f"| `{e['blob']}` | {e['bytes']:,} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    srcs = vendor(Path(sys.argv[1]))
    readme = HERE / "README.md"
    start, end = "<!-- files:begin -->", "<!-- files:end -->"
    text = readme.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(f"{head}{start}\n{readme_table(srcs)}\n{end}{tail}")
