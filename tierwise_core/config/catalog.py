"""The model catalog: each self-hosted model's weights, size tier, GPU profile, replicas, LoRA adapters,
price and (optionally) the stable model it is a canary of. Whether a model fits its pool is a
cross-section rule and lives with the other ones in `environment.py`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from .base import Name, Replicas, Strict
from .hardware import weights_gib

# --------------------------------------------------------------------------------------------
# Model catalog
class FullGpus(Strict):
    kind: Literal["full"] = "full"
    count: Annotated[int, Field(ge=1, le=64)] = 1


class MigSlice(Strict):
    kind: Literal["mig"]
    profile: str


class TimeSlice(Strict):
    kind: Literal["timeslice"]


GpuProfile = Annotated[Union[FullGpus, MigSlice, TimeSlice], Field(discriminator="kind")]

#: Serving tier by size: full GPUs for the large, MIG slices for the medium, time-slicing for the small.
TIER_BOUNDS_B = {"small": (0.0, 3.0), "medium": (3.0, 34.0), "large": (34.0, 2000.0)}
TIER_PROFILES = {"small": {"timeslice", "mig"}, "medium": {"mig", "full"}, "large": {"full"}}


class LoraAdapter(Strict):
    name: Name
    rank: Annotated[int, Field(ge=1, le=512)] = 16


class Canary(Strict):
    """A model-version canary: served under the stable model's name too, so clients never change `model`."""

    of: Name
    weight: Annotated[int, Field(ge=1, le=99)]


class CatalogModel(Strict):
    name: Name
    #: Weights location under the models bucket; the serving stack mounts it read-only.
    source: str
    params_b: Annotated[float, Field(gt=0, le=2000)]
    tier: Literal["small", "medium", "large"]
    precision: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"] = "bf16"
    pool: Name
    gpu: GpuProfile = FullGpus()
    replicas: Replicas = Replicas()
    max_model_len: Annotated[int, Field(ge=256, le=1_048_576)] = 8192
    lora_adapters: list[LoraAdapter] = Field(default_factory=list)
    max_loras: Annotated[int, Field(ge=1, le=64)] = 4
    max_lora_rank: Annotated[int, Field(ge=1, le=512)] = 16
    #: Draft model for speculative decoding (`--speculative-config`); none when omitted.
    speculative_model: str | None = None
    #: USD per million tokens charged to teams for this self-hosted model (GPU cost amortised).
    price_per_mtok_usd: Annotated[float, Field(ge=0)] = 0.0
    #: This entry is a new version of another catalog model, taking `weight` percent of that model's traffic at
    #: the inference Gateway (HTTPRoute backend weights); the other model is its rollback target.
    canary: Canary | None = None

    @model_validator(mode="after")
    def _tier(self) -> CatalogModel:
        lo, hi = TIER_BOUNDS_B[self.tier]
        if not lo <= self.params_b < hi:
            raise ValueError(f"tier {self.tier!r} covers {lo:g}B to {hi:g}B parameters; {self.params_b:g}B is outside")
        if self.gpu.kind not in TIER_PROFILES[self.tier]:
            raise ValueError(f"a {self.tier} model is served with gpu.kind in {sorted(TIER_PROFILES[self.tier])}, not {self.gpu.kind!r}")
        for a in self.lora_adapters:
            if a.rank > self.max_lora_rank:
                raise ValueError(f"adapter {a.name!r} has rank {a.rank} > max_lora_rank {self.max_lora_rank}")
        return self

    @property
    def weights_gib(self) -> float:
        return weights_gib(self.params_b, self.precision)


