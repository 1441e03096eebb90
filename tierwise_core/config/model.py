"""The typed environment model, by name: one YAML file per environment, validated before anything is built.

Every dev/prod difference is a value in it (STYLE §3). Models are frozen and forbid unknown keys, so a typo
fails at load time with its YAML path. The model is split by section; this module only re-exports it:

- `base`: the strict base model, `Name`, `Replicas`
- `infra`: state backend, network, cluster and system-node placement, image sources
- `pools`: GPU pools, how they share GPUs, and what a pod's GPUs bring along (`units_per_gpu`, `host_share`)
- `catalog`: self-hosted models; `teams`: teams, the platform budget, Bedrock
- `serving`: the model plane's services, observability, the serving namespace, service ports and Prometheus
- `agents`, `training`: agents and adapter-training pipelines
- `environment`: `Environment` itself, facts derived across sections, and every cross-section rule
- `slices`: what each stack receives (built from an `Environment` in one place)
"""

from __future__ import annotations

from .agents import Agent, AgentPool
from .base import Name, Replicas, Strict
from .catalog import TIER_BOUNDS_B, TIER_PROFILES, Canary, CatalogModel, FullGpus, GpuProfile, LoraAdapter, MigSlice, TimeSlice
from .environment import Environment, resolve_team
from .infra import SYSTEM_PLACEMENT, Cluster, ImageSources, Network, Placement, StateBackend, SystemNodeGroup
from .pools import FullGpuSharing, GpuPool, MigSharing, Sharing, TimeSliceSharing
from .serving import (SERVICE_PORT, SERVING_NAMESPACE, BedrockPrice, InferenceGateway, Observability, ServiceEndpoint,
                      ServiceScaling, Serving, prometheus_service)
from .teams import Bedrock, BedrockBudget, Guardrail, Platform, Team
from .training import Training, TrainingPipeline

__all__ = [
    "Agent", "AgentPool", "Bedrock", "BedrockBudget", "BedrockPrice", "Canary", "CatalogModel", "Cluster", "Environment",
    "FullGpuSharing", "FullGpus", "GpuPool", "GpuProfile", "Guardrail", "ImageSources", "InferenceGateway", "LoraAdapter",
    "MigSharing", "MigSlice", "Name", "Network", "Observability", "Placement", "Platform", "Replicas", "SERVICE_PORT",
    "SERVING_NAMESPACE", "SYSTEM_PLACEMENT", "ServiceEndpoint", "ServiceScaling", "Serving", "Sharing", "StateBackend",
    "Strict", "SystemNodeGroup", "TIER_BOUNDS_B", "TIER_PROFILES", "Team", "TimeSlice", "TimeSliceSharing", "Training",
    "TrainingPipeline", "prometheus_service", "resolve_team",
]
