"""TW-DEPLOY-002: exactly one component advertises each GPU NodePool's GPUs (device plugin xor DRA kubelet plugin)."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.checks.deploy.deploy_common import gpu_nodepools, pool_labels, release
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, result

DEVICE_PLUGIN_DEPLOY_LABEL = "nvidia.com/gpu.deploy.device-plugin"


def _selected(selector: dict, labels: dict[str, str]) -> bool:
    return all(labels.get(str(k)) == str(v) for k, v in (selector or {}).items())


class OneGpuAdvertiser:
    meta = CheckMeta(
        id="TW-DEPLOY-002",
        title="Exactly one GPU advertiser (device plugin or DRA driver) per GPU NodePool",
        severity="HIGH",
        categories=("DEPLOY", "GPU"),
        resource_types=("kubernetes_manifest", "helm_release"),
        rationale="With gpuResourcesEnabledOverride the DRA driver no longer refuses to run beside the device plugin; "
                  "if both land on a node they hand out the same GPUs twice. With neither, the pool's GPUs are invisible.",
        fix="Scope the DRA driver's kubeletPlugin.nodeSelector to the MIG pools and switch the device plugin off there "
            "(nvidia.com/gpu.deploy.device-plugin=false); leave the device plugin on every other GPU pool.",
        protects="GPU allocation: no GPU is handed to two pods, none is unschedulable",
        unsuppressible=True,
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        operator, dra = release(index, "gpu-operator"), release(index, "dra-driver-nvidia-gpu")
        device_plugin_on = operator is not None and (operator.values.get("devicePlugin") or {}).get("enabled", True) is not False
        dra_gpus = dra is not None and ((dra.values.get("resources") or {}).get("gpus") or {}).get("enabled", True) is not False
        dra_selector = ((dra.values.get("kubeletPlugin") or {}).get("nodeSelector") or {}) if dra else {}
        for np in gpu_nodepools(index):
            labels = pool_labels(np)
            advertisers = []
            if device_plugin_on and labels.get(DEVICE_PLUGIN_DEPLOY_LABEL) != "false":
                advertisers.append("NVIDIA device plugin (gpu-operator)")
            if dra_gpus and _selected(dra_selector, labels):
                advertisers.append("NVIDIA DRA kubelet plugin")
            if len(advertisers) == 1:
                yield result(m, PASS, np, f"{np.address}: NodePool {np.k8s_name!r} GPUs advertised by {advertisers[0]}")
            else:
                yield result(m, FAIL, np, f"{np.address}: NodePool {np.k8s_name!r} GPUs advertised by "
                                          f"{len(advertisers)} components ({', '.join(advertisers) or 'none'}) (node labels {labels}, "
                                          f"DRA kubeletPlugin.nodeSelector {dra_selector}); scope the DRA kubelet plugin "
                                          "to MIG pools and switch the device plugin off exactly there")
