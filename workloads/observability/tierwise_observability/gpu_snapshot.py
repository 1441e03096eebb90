"""`tierwise report snapshot`: gpu-usage/v1 samples (the cost report's GPU input) from `kubectl get -o json`."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

MIG_SLICES = 7  # A100/H100 compute slices: profile "Ng.xxgb" = N/7 of a GPU

def _gpus_requested(pod: dict[str, Any]) -> float:
    total = 0.0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources", {})
        req = {**res.get("limits", {}), **res.get("requests", {})}
        for k, v in req.items():
            if k == "nvidia.com/gpu":
                total += float(v)
            elif k.startswith("nvidia.com/mig-"):
                prof = k.removeprefix("nvidia.com/mig-")
                total += float(v) * int(prof.split("g.")[0]) / MIG_SLICES
    return total


def snapshot_from_kube(nodes: dict[str, Any], pods: dict[str, Any], namespaces: dict[str, Any],
                       ts: dt.datetime, interval_s: int) -> list[dict[str, Any]]:
    """gpu-usage/v1 records from `kubectl get nodes|pods -A|namespaces -o json`."""
    ns_team = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get("tierwise.io/team")
               for n in namespaces.get("items", [])}
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pods.get("items", []):
        if p.get("status", {}).get("phase") != "Running" or not p.get("spec", {}).get("nodeName"):
            continue
        g = _gpus_requested(p)
        if g <= 0:
            continue
        md = p["metadata"]
        labels = md.get("labels") or {}
        team = labels.get("tierwise.io/team") or ns_team.get(md["namespace"]) or md["namespace"]
        rec = {"namespace": md["namespace"], "pod": md["name"], "team": team, "gpus": g}
        if labels.get("tierwise.io/model"):
            rec["model"] = labels["tierwise.io/model"]
        by_node[p["spec"]["nodeName"]].append(rec)
    out = []
    for n in nodes.get("items", []):
        cap = n.get("status", {}).get("capacity", {})
        whole = float(cap.get("nvidia.com/gpu", 0))
        mig = sum(float(v) * int(k.removeprefix("nvidia.com/mig-").split("g.")[0]) / MIG_SLICES
                  for k, v in cap.items() if k.startswith("nvidia.com/mig-"))
        gpus = whole + mig
        if gpus <= 0:
            continue
        labels = n["metadata"].get("labels") or {}
        out.append({"schema": "gpu-usage/v1", "ts": ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                    "interval_s": interval_s, "node": n["metadata"]["name"],
                    "instance_type": labels.get("node.kubernetes.io/instance-type", "unknown"),
                    "capacity_type": labels.get("karpenter.sh/capacity-type", "on-demand"),
                    "region": labels.get("topology.kubernetes.io/region", ""), "node_gpus": gpus,
                    "pods": sorted(by_node.get(n["metadata"]["name"], []), key=lambda r: r["pod"])})
    return out
