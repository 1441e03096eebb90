"""Hardware facts the environment model validates against: GPU instance families and MIG profiles.

These are facts about AWS instance types and NVIDIA GPUs, not prices (prices live in
`policies/prices/`, versioned with their source, because they change and only the cost gate needs
them). A fork that adds an instance family adds it here; the environment validator then accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MigProfile:
    """One MIG GPU-instance profile: its memory and how many of the GPU's compute and memory slices it takes."""

    memory_gib: int
    compute_slices: int
    memory_slices: int


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_gib: int
    #: MIG profile name -> profile. Empty when the GPU has no MIG.
    mig_profiles: dict[str, MigProfile]
    #: Compute (SM) slices and memory slices one GPU is cut into (7 and 8 on A100/H100/H200).
    mig_compute_slices: int = 0
    mig_memory_slices: int = 0

    def mig_layout_problems(self, layout: dict[str, int]) -> list[str]:
        """What keeps `layout` (profile -> instances per GPU) from being applied by the MIG manager: unknown
        profiles, more compute slices than the GPU has, more memory slices than the GPU has. A layout can still
        fail on placement rules (NVIDIA's per-profile start positions) that this count does not model."""
        if not self.mig_profiles:
            return [f"{self.name} has no MIG"]
        unknown = [p for p in layout if p not in self.mig_profiles]
        if unknown:
            return [f"MIG profile {p!r} does not exist on {self.name}; valid: {', '.join(self.mig_profiles)}" for p in unknown]
        problems = []
        compute = sum(self.mig_profiles[p].compute_slices * n for p, n in layout.items())
        memory = sum(self.mig_profiles[p].memory_slices * n for p, n in layout.items())
        parts = " + ".join(f"{n}x{p}" for p, n in sorted(layout.items()))
        if compute > self.mig_compute_slices:
            problems.append(f"MIG layout {parts} uses {compute} compute slices; {self.name} has {self.mig_compute_slices}")
        if memory > self.mig_memory_slices:
            problems.append(f"MIG layout {parts} uses {memory} memory slices; {self.name} has {self.mig_memory_slices}")
        return problems


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpus: int
    vcpus: int
    memory_gib: int


@dataclass(frozen=True)
class InstanceFamily:
    name: str
    gpu: GpuModel
    sizes: tuple[InstanceType, ...]

    @property
    def max_gpus_per_node(self) -> int:
        return max(s.gpus for s in self.sizes)


# MIG profiles as published in NVIDIA's MIG user guide ("Supported MIG Profiles": per GPU, each profile's
# fraction of compute as n/7 and of memory as m/8). Compute *and* memory slices are counted: on A100-80GB,
# 2x 3g.40gb + 1x 1g.10gb fits 7 compute slices but needs 9 of the 8 memory slices, and cannot be applied.
def _mig(memory_gib: int, compute: int, memory: int) -> MigProfile:
    return MigProfile(memory_gib, compute, memory)


A10G = GpuModel("A10G", 24, {})
L4 = GpuModel("L4", 24, {})
L40S = GpuModel("L40S", 48, {})
A100_40 = GpuModel("A100-SXM4-40GB", 40, {
    "1g.5gb": _mig(5, 1, 1), "2g.10gb": _mig(10, 2, 2), "3g.20gb": _mig(20, 3, 4), "4g.20gb": _mig(20, 4, 4),
    "7g.40gb": _mig(40, 7, 8)}, 7, 8)
_HOPPER_AMPERE_80 = {
    "1g.10gb": _mig(10, 1, 1), "1g.20gb": _mig(20, 1, 2), "2g.20gb": _mig(20, 2, 2), "3g.40gb": _mig(40, 3, 4),
    "4g.40gb": _mig(40, 4, 4), "7g.80gb": _mig(80, 7, 8)}
A100_80 = GpuModel("A100-SXM4-80GB", 80, dict(_HOPPER_AMPERE_80), 7, 8)
H100_80 = GpuModel("H100-SXM5-80GB", 80, dict(_HOPPER_AMPERE_80), 7, 8)
H200_141 = GpuModel("H200-SXM5-141GB", 141, {
    "1g.18gb": _mig(18, 1, 1), "1g.35gb": _mig(35, 1, 2), "2g.35gb": _mig(35, 2, 2), "3g.71gb": _mig(71, 3, 4),
    "4g.71gb": _mig(71, 4, 4), "7g.141gb": _mig(141, 7, 8)}, 7, 8)


def _family(name: str, gpu: GpuModel, sizes: list[tuple[str, int, int, int]]) -> InstanceFamily:
    return InstanceFamily(name, gpu, tuple(InstanceType(f"{name}.{s}", g, c, m) for s, g, c, m in sizes))


FAMILIES: dict[str, InstanceFamily] = {
    f.name: f
    for f in (
        _family("g5", A10G, [("xlarge", 1, 4, 16), ("2xlarge", 1, 8, 32), ("12xlarge", 4, 48, 192), ("48xlarge", 8, 192, 768)]),
        _family("g6", L4, [("xlarge", 1, 4, 16), ("2xlarge", 1, 8, 32), ("12xlarge", 4, 48, 192), ("48xlarge", 8, 192, 768)]),
        _family("g6e", L40S, [("xlarge", 1, 4, 32), ("2xlarge", 1, 8, 64), ("12xlarge", 4, 48, 384), ("48xlarge", 8, 192, 1536)]),
        _family("p4d", A100_40, [("24xlarge", 8, 96, 1152)]),
        _family("p4de", A100_80, [("24xlarge", 8, 96, 1152)]),
        _family("p5", H100_80, [("48xlarge", 8, 192, 2048)]),
        _family("p5e", H200_141, [("48xlarge", 8, 192, 2048)]),
    )
}

#: Bytes per parameter by serving precision.
BYTES_PER_PARAM: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}

#: Share of accelerator memory the weights may take; the rest is KV cache, activations and
#: CUDA context. vLLM's default --gpu-memory-utilization is 0.9 and the KV cache needs room.
WEIGHTS_MEMORY_FRACTION = 0.75


def weights_gib(params_b: float, precision: str) -> float:
    return params_b * 1e9 * BYTES_PER_PARAM[precision] / 2**30
