"""`NvidiaGpuSoftware`: the NVIDIA GPU operator (device plugin, MIG manager, DCGM exporter) and the
NVIDIA DRA driver, configured from the environment's pools.

MIG pools get a named MIG layout (`nvidia.com/mig.config=<pool>` on their nodes) that the MIG manager
applies; their slices are handed out through DRA (`mig.nvidia.com` DeviceClass), so the classic
device plugin is switched off on those nodes. Time-sliced pools get a device-plugin sharing config
(`nvidia.com/device-plugin.config=<pool>`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from constructs import Construct

from ..helm_chart import HelmChart, HelmChartProps
from ..kubernetes import KubernetesObject
from .gpu_node_pool import ADVERTISER_LABEL

#: The nvcr.io images the GPU operator runs with our values (driver off, no sandbox workloads, no GDS/GDRCopy/
#: vGPU/Kata/CC), from the chart's values.yaml at v25.10.1 (operator and validator take the chart's appVersion).
#: ECR cannot cache nvcr.io, so these are mirrored (tierwise.config.registries); TW-DEPLOY-003 proves that every
#: image the chart's values name resolves, so an upgrade that adds one fails the gate until it is listed here.
GPU_OPERATOR_IMAGES = (
    "nvcr.io/nvidia/gpu-operator:v25.10.1",
    "nvcr.io/nvidia/cuda:13.0.1-base-ubi9",
    "nvcr.io/nvidia/k8s/container-toolkit:v1.18.1",
    "nvcr.io/nvidia/k8s-device-plugin:v0.18.1",
    "nvcr.io/nvidia/k8s/dcgm-exporter:4.4.2-4.7.0-distroless",
    "nvcr.io/nvidia/cloud-native/k8s-mig-manager:v0.13.1",
)
GPU_OPERATOR_NS = "gpu-operator"
MIG_CONFIG_MAP = "tierwise-mig-layouts"
SHARING_CONFIG_MAP = "tierwise-time-slicing"


class IImageSources(Protocol):
    def repository(self, upstream_repository: str) -> str: ...


@dataclass(frozen=True)
class NvidiaGpuSoftwareProps:
    #: Where nodes pull the charts' images from (ImageSources).
    images: IImageSources
    #: pool name -> {MIG profile: slices per GPU}
    mig_layouts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: pool name -> time-sliced replicas per GPU
    time_slicing: dict[str, int] = field(default_factory=dict)
    gpu_operator_version: str = "v25.10.1"
    dra_driver_version: str = "0.4.0"


class NvidiaGpuSoftware(Construct):
    """Creates two ConfigMaps (MIG layouts, time-slicing) and two `helm_release`s (gpu-operator,
    dra-driver-nvidia-gpu)."""

    def __init__(self, scope: Construct, id: str, *, props: NvidiaGpuSoftwareProps) -> None:
        super().__init__(scope, id)
        mig_cfg = {"version": "v1", "mig-configs": {
            "all-disabled": [{"devices": "all", "mig-enabled": False}],
            **{pool: [{"devices": "all", "mig-enabled": True, "mig-devices": layout}] for pool, layout in sorted(props.mig_layouts.items())},
        }}
        sharing = {pool: json.dumps({"version": "v1", "flags": {"migStrategy": "none"}, "sharing": {"timeSlicing": {
            "renameByDefault": False, "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": n}]}}}, sort_keys=True)
            for pool, n in sorted(props.time_slicing.items())}
        sharing["default"] = json.dumps({"version": "v1", "flags": {"migStrategy": "none"}}, sort_keys=True)
        repo = props.images.repository
        nvidia, nvidia_k8s, nvidia_cn = repo("nvcr.io/nvidia"), repo("nvcr.io/nvidia/k8s"), repo("nvcr.io/nvidia/cloud-native")
        operator = HelmChart(self, "gpu-operator", props=HelmChartProps(
            release_name="gpu-operator", chart="gpu-operator", repository="https://helm.ngc.nvidia.com/nvidia",
            version=props.gpu_operator_version, namespace=GPU_OPERATOR_NS,
            values={
                "driver": {"enabled": False},  # the EKS-optimized NVIDIA AMI ships the driver
                "operator": {"repository": nvidia, "initContainer": {"repository": nvidia}},
                "validator": {"repository": nvidia},
                "toolkit": {"enabled": True, "repository": nvidia_k8s},
                "mig": {"strategy": "mixed"},
                "migManager": {"enabled": True, "repository": nvidia_cn,
                               "config": {"name": MIG_CONFIG_MAP, "default": "all-disabled"}},
                "devicePlugin": {"repository": nvidia, "config": {"name": SHARING_CONFIG_MAP, "default": "default"}},
                "gfd": {"repository": nvidia},
                "dcgmExporter": {"enabled": True, "repository": nvidia_k8s, "serviceMonitor": {"enabled": False}},
                "node-feature-discovery": {"image": {"repository": repo("registry.k8s.io/nfd/node-feature-discovery")}},
                "daemonsets": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
            }))
        for cid, name, data in (("mig-layouts", MIG_CONFIG_MAP, {"config.yaml": json.dumps(mig_cfg, sort_keys=True)}),
                                ("time-slicing", SHARING_CONFIG_MAP, sharing)):
            cm = KubernetesObject(self, cid, body={"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": name, "namespace": GPU_OPERATOR_NS}, "data": data})
            cm.manifest.node.add_dependency(operator.release)
        HelmChart(self, "dra-driver", props=HelmChartProps(
            release_name="nvidia-dra-driver-gpu", chart="dra-driver-nvidia-gpu", repository="https://helm.ngc.nvidia.com/nvidia",
            version=props.dra_driver_version, namespace="nvidia-dra-driver-gpu",
            values={"nvidiaDriverRoot": "/", "gpuResourcesEnabledOverride": True,
                    # the chart's default tag is "v" + appVersion; pinned so what is pulled is visible in the values
                    "image": {"repository": repo("registry.k8s.io/dra-driver-nvidia/dra-driver-nvidia-gpu"),
                              "tag": f"v{props.dra_driver_version}"},
                    "resources": {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}},
                    # `gpuResourcesEnabledOverride` turns off the chart's guard against running beside the device
                    # plugin, so the kubelet plugin must land only where the device plugin is off: the MIG pools
                    # (tenancy labels their nodes `tierwise.io/gpu-advertiser=dra` and the device plugin off).
                    "kubeletPlugin": {"nodeSelector": {ADVERTISER_LABEL: "dra"},
                                      "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}))
