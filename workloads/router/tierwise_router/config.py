"""Router configuration: one YAML/JSON document (the platform renders it into a ConfigMap).

The schema is strict (unknown fields are errors, with their path) because a typo in a budget or a
price silently costs money. Money is kept exact: prices are Decimals, costs and budgets are integer
nano-USD (1e-9 USD), rounded up per call.

Example (see README.md for every field)::

    version: 1
    teams:
      - name: payments
        api_key_sha256: ["<sha256 hex of the API key>"]
        budgets: {tokens_per_day: 2000000, usd_per_month: "150.00"}
        rate_limits: {rpm: 600, tpm: 400000, max_queue: 64, max_wait_s: 2.0}
    models:
      - {name: tiny, tier: 1, kind: vllm, served_model_name: tiny,
         endpoints: ["http://vllm-0:8000"], adapters: [billing, support],
         price: {gpu_hour_usd: "1.20", tokens_per_s: 1500}}
      - {name: claude-haiku, tier: 2, kind: bedrock, model_id: anthropic.claude-3-haiku-20240307-v1:0,
         region: us-east-1, price: {input_usd_per_mtok: "0.25", output_usd_per_mtok: "1.25"}}
    routing: {tier1_model: tiny, tier2_model: claude-haiku, target_tier2_share: 0.3}
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator, model_validator

NANO = Decimal(1_000_000_000)
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._:-]{0,62}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def hash_api_key(key: str) -> str:
    """The only form in which API keys appear in config: sha256 hex of the UTF-8 key."""
    return hashlib.sha256(key.encode()).hexdigest()


def usd_to_nano(usd: Decimal) -> int:
    return int((usd * NANO).to_integral_value(rounding=ROUND_CEILING))


class Budgets(Strict):
    tokens_per_day: int | None = Field(default=None, gt=0)
    usd_per_month: Decimal | None = Field(default=None, gt=0)

    @property
    def usd_per_month_nano(self) -> int | None:
        return None if self.usd_per_month is None else usd_to_nano(self.usd_per_month)


class RateLimits(Strict):
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_queue: int = Field(default=32, ge=0, description="requests allowed to wait for the bucket")
    max_wait_s: float = Field(default=2.0, ge=0, description="longest wait before 429 + Retry-After")


class Team(Strict):
    name: Name
    api_key_sha256: list[Sha256Hex] = Field(min_length=1)
    budgets: Budgets = Budgets()
    rate_limits: RateLimits = RateLimits()
    allowed_models: list[str] | None = None
    default_adapter: str | None = None
    mode: Literal["triage", "cascade", "triage+cascade"] = Field(
        default="triage", description="how model `auto` is routed: triage alone, Tier 1 first with escalation on low "
        "confidence (cascade.py), or triage with the cascade for the calls triage is unsure about")


class SelfHostedPrice(Strict):
    """Tier-1 tokens are priced too: the GPU-hour amortised over measured throughput."""

    gpu_hour_usd: Decimal = Field(ge=0)
    tokens_per_s: Decimal = Field(gt=0)

    def usd_per_token(self) -> tuple[Decimal, Decimal]:
        per = self.gpu_hour_usd / Decimal(3600) / self.tokens_per_s
        return per, per


class TokenPrice(Strict):
    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)

    def usd_per_token(self) -> tuple[Decimal, Decimal]:
        m = Decimal(1_000_000)
        return self.input_usd_per_mtok / m, self.output_usd_per_mtok / m


class VllmModel(Strict):
    name: Name
    tier: Literal[1] = 1
    kind: Literal["vllm"] = "vllm"
    served_model_name: str
    endpoints: list[HttpUrl] = Field(min_length=1)
    adapters: list[Name] = []
    price: SelfHostedPrice | TokenPrice
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=1.0, gt=0)

    @field_validator("endpoints")
    @classmethod
    def _no_dupes(cls, v: list[HttpUrl]) -> list[HttpUrl]:
        if len({str(u) for u in v}) != len(v):
            raise ValueError("duplicate endpoint")
        return v


class BedrockModel(Strict):
    name: Name
    tier: Literal[2] = 2
    kind: Literal["bedrock"] = "bedrock"
    model_id: str = Field(min_length=1)
    region: str = "us-east-1"
    endpoint_url: HttpUrl | None = Field(default=None, description="override, e.g. a VPC endpoint")
    price: TokenPrice
    max_attempts: int = Field(default=4, ge=1, description="throttling retries with backoff, then 429")
    backoff_base_s: float = Field(default=0.2, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)


Model = Annotated[VllmModel | BedrockModel, Field(discriminator="kind")]


class Hooks(Strict):
    guardrails_url: HttpUrl | None = Field(default=None, description="POST {url}/v1/check, both directions")
    rag_url: HttpUrl | None = Field(default=None, description="POST {url}/v1/retrieve before the call")
    rag_collections: list[str] = Field(default_factory=list, max_length=32,
                                       description="collections to retrieve from (the RAG API needs at least one)")
    rag_mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    rag_top_k: int = Field(default=4, ge=1, le=50)
    timeout_s: float = Field(default=2.0, gt=0)
    fail_open: bool = Field(default=False, description="when a hook is down: False → 503, True → skip")
    stream_window_chars: int = Field(default=400, ge=32, le=16384, description="streamed output is checked per "
                                     "sentence; a sentence longer than this is checked at its last space before it")

    @model_validator(mode="after")
    def _rag_needs_collections(self) -> Hooks:
        if self.rag_url is not None and not self.rag_collections:
            raise ValueError("hooks.rag_collections: required when rag_url is set (POST /v1/retrieve needs at "
                             "least one collection)")
        return self


class Cascade(Strict):
    """Tier 1 answers first; the router reads its token logprobs and escalates to Tier 2 before the
    first byte reaches the client when their geometric-mean probability is below ``min_confidence``."""

    min_confidence: float = Field(default=0.5, ge=0, le=1,
                                  description="escalate when exp(mean logprob) of the judged tokens is below this")
    tokens: int = Field(default=8, ge=1, le=256, description="Tier-1 tokens judged (streams: buffered before the "
                        "first byte, so this bounds the added time to first token)")
    unsure_share: float = Field(default=0.3, ge=0, le=1, description="triage+cascade: the share of traffic just below "
                                "the Tier-2 threshold that triage calls unsure and sends through the cascade")


class AdapterSplit(Strict):
    """One served version of a LoRA adapter and its traffic share (``tierwise.adapter-routes/v1``, the
    document ``tierwise adapters rollout --routes-out`` writes; see canary.py)."""

    served: Name
    weight: float = Field(ge=0, le=1)
    version: int | None = Field(default=None, ge=1)


def check_splits(routes: dict[str, list[AdapterSplit]], where: str) -> None:
    for name, splits in routes.items():
        if not splits or abs(sum(s.weight for s in splits) - 1.0) > 1e-6:
            raise ValueError(f"{where}.{name}: weights must sum to 1, got {[s.weight for s in splits]}")
        if len({s.served for s in splits}) != len(splits):
            raise ValueError(f"{where}.{name}: a served name is listed twice")


class Routing(Strict):
    tier1_model: Name
    tier2_model: Name | None = None
    target_tier2_share: float = Field(default=0.3, ge=0, le=1,
                                      description="sets the triage threshold from the training score quantiles")
    domain_adapters: dict[str, str] = Field(default_factory=dict,
                                            description="triage domain label → LoRA adapter of tier1_model")
    saturation_waiting: int = Field(default=16, ge=0,
                                    description="vllm:num_requests_waiting above this → replica saturated")
    default_max_tokens: int = Field(default=512, gt=0, description="used to reserve budget when max_tokens is unset")
    prefix_block_chars: int = Field(default=256, gt=0)
    prefix_blocks: int = Field(default=2, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=10.0, gt=0)
    gateway_url: HttpUrl | None = Field(default=None, description="Tier 1 through the inference Gateway (Gateway API "
                                        "Inference Extension) at this one URL instead of the router's own balancer "
                                        "over the model's endpoints (gateway.py)")
    adapter_routes: dict[Name, list[AdapterSplit]] = Field(
        default_factory=dict, description="adapter canaries: logical adapter → served versions with weights")
    adapter_routes_file: Path | None = Field(default=None, description="a tierwise.adapter-routes/v1 JSON document, "
                                             "re-read when it changes; its adapters override adapter_routes")
    adapter_routes_reload_s: float = Field(default=5.0, gt=0, le=3600)

    @field_validator("gateway_url")
    @classmethod
    def _plain_http(cls, v: HttpUrl | None) -> HttpUrl | None:
        if v is not None and v.scheme != "http":  # the Tier-1 client (upstreams/h1.py) speaks plain HTTP/1.1
            raise ValueError(f"must be http:// (the in-cluster Gateway listener), got {v.scheme}://")
        return v
    cascade: Cascade = Cascade()


class RouterConfig(Strict):
    version: Literal[1] = 1
    teams: list[Team] = Field(min_length=1)
    models: list[Model] = Field(min_length=1)
    routing: Routing
    hooks: Hooks = Hooks()

    @model_validator(mode="after")
    def _references(self) -> RouterConfig:
        names = [m.name for m in self.models]
        if "auto" in names:
            raise ValueError("models: 'auto' is reserved for the triage router")
        if len(set(names)) != len(names):
            raise ValueError("models: duplicate name")
        by = {m.name: m for m in self.models}
        t1 = by.get(self.routing.tier1_model)
        if not isinstance(t1, VllmModel):
            raise ValueError(f"routing.tier1_model: {self.routing.tier1_model!r} is not a vllm model")
        if self.routing.tier2_model is not None and not isinstance(by.get(self.routing.tier2_model), BedrockModel):
            raise ValueError(f"routing.tier2_model: {self.routing.tier2_model!r} is not a bedrock model")
        check_splits(self.routing.adapter_routes, "routing.adapter_routes")
        for ad in self.routing.adapter_routes:
            if ad not in t1.adapters:
                raise ValueError(f"routing.adapter_routes.{ad}: not an adapter of {t1.name}")
        for dom, ad in self.routing.domain_adapters.items():
            if ad not in t1.adapters:
                raise ValueError(f"routing.domain_adapters.{dom}: {ad!r} is not an adapter of {t1.name}")
        tnames = [t.name for t in self.teams]
        if len(set(tnames)) != len(tnames):
            raise ValueError("teams: duplicate name")
        keys = [k for t in self.teams for k in t.api_key_sha256]
        if len(set(keys)) != len(keys):
            raise ValueError("teams: an API key hash is used twice")
        return self

    def model(self, name: str) -> VllmModel | BedrockModel | None:
        for m in self.models:
            if m.name == name:
                return m
        return None


def load_config(path: str | Path) -> RouterConfig:
    p = Path(path)
    text = p.read_text()
    data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    return RouterConfig.model_validate(data)


class ExactPrice:
    """A model's price as integers: cost_nano = ceil((a*prompt + b*completion) / d), exact (no Decimal
    context rounding). Built once per model at start-up: ``cost_nano`` with Decimals cost ~12 µs per
    call (2.6 % of the router's py-spy samples at 500 req/s, called twice per request); this is ~0.3 µs."""

    __slots__ = ("a", "b", "d")

    def __init__(self, price: SelfHostedPrice | TokenPrice) -> None:
        if isinstance(price, SelfHostedPrice):
            pin = pout = Fraction(price.gpu_hour_usd) / 3600 / Fraction(price.tokens_per_s)
        else:
            pin = Fraction(price.input_usd_per_mtok) / 1_000_000
            pout = Fraction(price.output_usd_per_mtok) / 1_000_000
        fa, fb = pin * 1_000_000_000, pout * 1_000_000_000
        d = math.lcm(fa.denominator, fb.denominator)
        self.a = fa.numerator * (d // fa.denominator)
        self.b = fb.numerator * (d // fb.denominator)
        self.d = d

    def cost_nano(self, prompt_tokens: int, completion_tokens: int) -> int:
        return -(-(self.a * prompt_tokens + self.b * completion_tokens) // self.d)


def cost_nano(price: SelfHostedPrice | TokenPrice, prompt_tokens: int, completion_tokens: int) -> int:
    """Exact cost in nano-USD, rounded up (never under-charges)."""
    return ExactPrice(price).cost_nano(prompt_tokens, completion_tokens)


def nano_to_usd_str(n: int) -> str:
    return f"{Decimal(n) / NANO:.9f}"

