"""GPU pools: which instance families a pool launches, how it shares each GPU (whole, MIG, time-sliced),
its ceilings, and the facts derived from that — memory per GPU, sharing units per GPU, and the CPU and
memory a pod's GPUs bring along (what model servers and training Jobs request)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from .base import Name, Strict
from .hardware import FAMILIES

# --------------------------------------------------------------------------------------------
# GPU pools
class FullGpuSharing(Strict):
    mode: Literal["full"] = "full"


class MigSharing(Strict):
    """MIG slices handed out through the NVIDIA DRA driver. `layout` is the per-GPU partition."""

    mode: Literal["mig"]
    layout: dict[str, Annotated[int, Field(ge=1, le=7)]]


class TimeSliceSharing(Strict):
    mode: Literal["timeslice"]
    replicas_per_gpu: Annotated[int, Field(ge=2, le=48)] = 4


Sharing = Annotated[Union[FullGpuSharing, MigSharing, TimeSliceSharing], Field(discriminator="mode")]


class GpuPool(Strict):
    name: Name
    instance_families: Annotated[list[str], Field(min_length=1)]
    capacity_types: Annotated[list[Literal["spot", "on-demand"]], Field(min_length=1)] = ["on-demand"]
    #: Hard ceiling on physical GPUs this pool may launch (Karpenter NodePool limit).
    gpu_limit: Annotated[int, Field(ge=1, le=4096)]
    #: CPU ceiling; defaults to what `gpu_limit` GPUs of the largest size bring along.
    cpu_limit: Annotated[int, Field(ge=1)] | None = None
    sharing: Sharing = FullGpuSharing()
    #: How long an empty or underused node waits before consolidation may remove it.
    consolidate_after: Annotated[str, Field(pattern=r"^\d+(s|m|h)$")] = "10m"
    #: Share of nodes that may be disrupted at once.
    disruption_budget_nodes: Annotated[str, Field(pattern=r"^(\d+%|\d+)$")] = "10%"
    disk_gib: Annotated[int, Field(ge=50, le=16384)] = 500

    @field_validator("instance_families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for f in v:
            if f not in FAMILIES:
                raise ValueError(f"unknown GPU instance family {f!r}; known: {', '.join(sorted(FAMILIES))}")
        return v

    @model_validator(mode="after")
    def _sharing_fits_gpu(self) -> GpuPool:
        gpus = {FAMILIES[f].gpu.name for f in self.instance_families}
        if isinstance(self.sharing, MigSharing):
            if len(gpus) != 1:
                raise ValueError(f"a MIG pool needs one GPU model; families {self.instance_families} mix {sorted(gpus)}")
            gpu = FAMILIES[self.instance_families[0]].gpu
            if not gpu.mig_profiles:
                raise ValueError(f"{gpu.name} has no MIG; use p4d, p4de, p5 or p5e for mode: mig")
            problems = gpu.mig_layout_problems(dict(self.sharing.layout))
            if problems:
                raise ValueError("; ".join(problems))
        return self

    # -- derived facts -------------------------------------------------------------------------
    @property
    def gpu_memory_gib(self) -> int:
        return min(FAMILIES[f].gpu.memory_gib for f in self.instance_families)

    @property
    def max_gpus_per_node(self) -> int:
        return max(FAMILIES[f].max_gpus_per_node for f in self.instance_families)

    @property
    def effective_cpu_limit(self) -> int:
        if self.cpu_limit is not None:
            return self.cpu_limit
        per_gpu = max(s.vcpus / s.gpus for f in self.instance_families for s in FAMILIES[f].sizes)
        return int(per_gpu * self.gpu_limit)

    def mig_slice_gib(self, profile: str) -> int:
        return FAMILIES[self.instance_families[0]].gpu.mig_profiles[profile].memory_gib



    @property
    def units_per_gpu(self) -> int:
        """Schedulable units one physical GPU becomes: MIG slices of the layout, time-sliced replicas, or 1."""
        if isinstance(self.sharing, MigSharing):
            return sum(self.sharing.layout.values())
        if isinstance(self.sharing, TimeSliceSharing):
            return self.sharing.replicas_per_gpu
        return 1

    def host_share(self, gpus: int) -> tuple[int, int]:
        """CPU and memory (GiB) that `gpus` GPUs of this pool bring along on the smallest-ratio size."""
        sizes = [s for f in self.instance_families for s in FAMILIES[f].sizes]
        cpu = min(s.vcpus / s.gpus for s in sizes)
        mem = min(s.memory_gib / s.gpus for s in sizes)
        return int(cpu * gpus), int(mem * gpus)

    def pod_resources(self, gpus: int | None = None) -> tuple[str, int]:
        """CPU (Kubernetes quantity) and memory (GiB) one pod requests: the host share of `gpus` whole GPUs (at
        most one node's), or of one sharing unit when `gpus` is None; 80% of it, leaving headroom for the
        node's daemons. Model servers and training Jobs are both sized this way."""
        if gpus is None:
            cpu, mem = self.host_share(1)
            cpu, mem = max(1, cpu // self.units_per_gpu), max(4, mem // self.units_per_gpu)
        else:
            cpu, mem = self.host_share(min(gpus, self.max_gpus_per_node))
        return str(max(1, cpu * 4 // 5)), max(4, mem * 4 // 5)
