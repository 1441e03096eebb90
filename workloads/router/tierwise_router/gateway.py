"""Tier 1 through the inference Gateway (Gateway API Inference Extension) instead of the router's own balancer.

``routing.gateway_url`` set (the cluster): Tier 1 is one upstream, the Gateway. Every call carries the
catalog model name twice: in the OpenAI body's ``model`` field as always (the served name: base model
or adapter version, which the endpoint picker uses for LoRA affinity) and in the header
``X-Gateway-Model-Name: <catalog model>`` (the Inference Extension's convention: HTTPRoutes match on it
to pick the model's InferencePool, so no body-based-routing filter is needed in front). The Gateway's
endpoint picker does replica choice (KV-cache/prefix, queue depth, loaded adapters), so the router
does not scrape replicas and has no per-replica view.

``routing.gateway_url`` unset (a laptop, the tests): the router's own balancer over the model's
``endpoints`` (balancer.py). The API, headers and metrics are the same either way; only the
``x-tierwise-upstream`` header and the ``upstream`` metric/log label show the gateway URL.

Fallback to Tier 2 happens before the first byte in both modes. The Gateway answers 429 when the
pool is saturated (the picker sheds load) — a 429 is therefore never passed through: it falls back
with reason ``saturated`` (the same reason the local balancer reports when every replica's queue is
over ``saturation_waiting``), and it does not count against the breaker (the Gateway answered).
5xx, timeouts and connection errors fall back as ``tier1_status``/``tier1_timeout``/``tier1_connect``
and count against the Gateway's breaker; other 4xx are the request's fault and are passed through.
"""

from __future__ import annotations

from .balancer import Replica
from .breaker import Breaker
from .config import RouterConfig, VllmModel
from .upstreams.h1 import H1Pool

#: The header HTTPRoutes match on (Gateway API Inference Extension, body-based routing convention).
MODEL_HEADER = "X-Gateway-Model-Name"


def tier1_replicas(cfg: RouterConfig, t1: VllmModel) -> list[Replica]:
    """Tier 1's upstreams: the Gateway alone when ``routing.gateway_url`` is set, else every endpoint."""
    rt = cfg.routing
    if rt.gateway_url is not None:
        url = str(rt.gateway_url).rstrip("/")
        hdr = {MODEL_HEADER: t1.name}
        return [Replica(url, Breaker(rt.breaker_failures, rt.breaker_reset_s), headers=hdr, scrape=False,
                        pool=H1Pool(url, connect_timeout_s=t1.connect_timeout_s, extra_headers=hdr))]
    return [Replica(str(u).rstrip("/"), Breaker(rt.breaker_failures, rt.breaker_reset_s),
                    pool=H1Pool(str(u).rstrip("/"), connect_timeout_s=t1.connect_timeout_s))
            for u in t1.endpoints]
