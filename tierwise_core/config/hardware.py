"""Hardware facts the environment model validates against: GPU instance families and MIG profiles.

These are facts about AWS instance types and NVIDIA GPUs, not prices (prices live in
`policies/prices/`, versioned with their source, because they change and only the cost gate needs
them). A fork that adds an instance family adds it here; the environment validator then accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_gib: int
    #: MIG profile name -> memory of one slice in GiB. Empty when the GPU has no MIG.
    mig_profiles: dict[str, int]
    #: Largest number of slices of the smallest profile (7 for A100/H100/H200).
    mig_max_slices: int = 0


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


# MIG profiles as published in NVIDIA's MIG user guide ("Supported MIG Profiles").
A10G = GpuModel("A10G", 24, {})
L4 = GpuModel("L4", 24, {})
L40S = GpuModel("L40S", 48, {})
A100_40 = GpuModel(
    "A100-SXM4-40GB", 40, {"1g.5gb": 5, "2g.10gb": 10, "3g.20gb": 20, "4g.20gb": 20, "7g.40gb": 40}, 7
)
A100_80 = GpuModel(
    "A100-SXM4-80GB",
    80,
    {"1g.10gb": 10, "1g.20gb": 20, "2g.20gb": 20, "3g.40gb": 40, "4g.40gb": 40, "7g.80gb": 80},
    7,
)
H100_80 = GpuModel(
    "H100-SXM5-80GB",
    80,
    {"1g.10gb": 10, "1g.20gb": 20, "2g.20gb": 20, "3g.40gb": 40, "4g.40gb": 40, "7g.80gb": 80},
    7,
)
H200_141 = GpuModel(
    "H200-SXM5-141GB",
    141,
    {"1g.18gb": 18, "1g.35gb": 35, "2g.35gb": 35, "3g.71gb": 71, "4g.71gb": 71, "7g.141gb": 141},
    7,
)


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
