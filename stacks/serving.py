"""serving: the model plane and the services in front of it, generated from the model catalog and teams.

Per catalog model: a vLLM server (Deployment, or LeaderWorkerSet across nodes) with its read-only S3
identity and a KEDA ScaledObject on queue length. In front: router, RAG
and guardrails (ECR repositories, ConfigMaps from the environment, one Pod Identity role each), Qdrant
(upstream Helm chart), the data they use (S3 buckets, escalation queue + DLQ, Valkey for budgets) and the
NetworkPolicies that allow exactly the flows between them. The router addresses each model's ClusterIP Service
directly (its own queue-aware tier/fallback logic picks the model); no Gateway or Inference Extension endpoint
picker is deployed, so no InferencePool/HTTPRoute is emitted that nothing would serve. Deployed after `tenancy` (namespace, MIG
claim templates) and `platform` (KEDA, LWS, Gateway API CRDs).
"""

from __future__ import annotations

import json

from constructs import Construct

from tierwise.config.catalog import FullGpus, MigSlice
from tierwise.config.slices import ServingSlice
from tierwise.constructs.capacity.mig_claim_template import claim_template_name
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.helm_chart import HelmChart, HelmChartProps
from tierwise.constructs.serving.access_log_bucket import AccessLogBucket, AccessLogBucketProps
from tierwise.constructs.serving.budget_cache import PORT as VALKEY_PORT
from tierwise.constructs.serving.budget_cache import ValkeyCache, ValkeyCacheProps
from tierwise.constructs.serving.data_bucket import DataBucket, DataBucketProps
from tierwise.constructs.serving.ecr_repository import EcrRepository, EcrRepositoryProps
from tierwise.constructs.serving.escalation_queue import EscalationQueue, EscalationQueueProps
from tierwise.constructs.serving.inference_gateway import AGENT_PORT, CONTROLLER_LABELS, CONTROLLER_NAMESPACE
from tierwise.constructs.serving.inference_gateway import LISTENER_PORT as GATEWAY_PORT
from tierwise.constructs.serving.inference_gateway import InferenceGateway, InferenceGatewayProps
from tierwise.constructs.serving.inference_pool import EPP_PORT, ModelInferencePool, ModelInferencePoolProps
from tierwise.constructs.serving.mountpoint_s3_csi_driver import MountpointS3CsiDriver, MountpointS3CsiDriverProps
from tierwise.constructs.serving.model_route import ModelRoute, ModelRouteProps, PoolWeight
from tierwise.constructs.serving.network_policy import (
    NamespaceIsolation, NamespaceIsolationProps, NetworkPolicy, NetworkPolicyProps, cidr, namespaces, pods, tcp)
from tierwise.constructs.serving.platform_service import CONFIG_DIR, PlatformService, PlatformServiceProps, SecretEnv
from tierwise.constructs.serving.pod_defaults import POD_IDENTITY_AGENT_CIDR, selector
from tierwise.constructs.serving.queue_scaled_object import PrometheusQueue, QueueScaledObject, QueueScaledObjectProps
from tierwise.constructs.serving.router_config import (
    BASE_FILE, KEYS_FILE, MERGE_SCRIPT, BedrockModel, RouterConfigProps, RouterPrincipal, SelfHostedModel, render_router_base_file)
from tierwise.constructs.serving.vllm_model_server import PORT as VLLM_PORT
from tierwise.constructs.serving.vllm_model_server import LoraAdapterSpec, VllmModelServer, VllmModelServerProps

from .base import InClusterStack
from .capacity import CapacityStack
from .cluster import ClusterStack
from .network import NetworkStack

QDRANT_CHART_VERSION = "1.19.0"  # server v1.19.0; qdrant-client 1.20 (rag) supports servers one minor apart
QDRANT_PORTS = {"http": 6333, "grpc": 6334, "p2p": 6335}
QDRANT_LABELS = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "qdrant"}
SERVICES = ("router", "rag", "guardrails")
LEDGER_PREFIX = "ledger/router"  # the router's usage ledger segments (its role may only add objects here)


def router_config_props(env: ServingSlice, *, model_urls: dict[str, str], rag_url: str, guardrails_url: str | None,
                        gateway_url: str | None = None) -> RouterConfigProps:
    """The router's config file, from the environment: teams, then each agent as its own principal."""
    sv = env.serving
    return RouterConfigProps(
        principals=tuple(RouterPrincipal(t.name, t.tokens_per_day, tuple(t.allowed_models), t.monthly_budget_usd,
                                         t.routing_mode) for t in env.teams)
        + tuple(RouterPrincipal(a.router_principal, a.tokens_per_day, tuple(a.models), a.monthly_budget_usd)
                for a in env.agents),
        models=tuple(SelfHostedModel(m.name, model_urls[m.name], tuple(a.name for a in m.lora_adapters), m.price_per_mtok_usd)
                     for m in env.models),
        bedrock_models=tuple(BedrockModel(i, sv.bedrock_prices[i].input_usd_per_mtok, sv.bedrock_prices[i].output_usd_per_mtok)
                             for i in env.bedrock.allowed_model_ids),
        region=env.region, target_tier2_share=sv.target_tier2_share, saturation_waiting=sv.router_saturation_waiting,
        rag_url=rag_url, guardrails_url=guardrails_url, tier1_model=sv.router_tier1_model, tier2_model=sv.router_tier2_model,
        rag_collections=tuple(sv.router_rag_collections), gateway_url=gateway_url)


class ServingStack(InClusterStack):
    layer = "serving"

    def __init__(self, scope: Construct, env: ServingSlice, *, network: NetworkStack, cluster: ClusterStack,
                 capacity: CapacityStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        eks = cluster.eks
        sv = env.serving
        ns = sv.namespace
        prefix = env.prefix
        protect = env.protect_stateful
        identity = self.identity

        # -- data ---------------------------------------------------------------------------------
        key = EncryptionKey(self, "serving-key", props=EncryptionKeyProps(
            alias=f"{prefix}/serving", account_id=env.account_id, region=env.region, protect=protect,
            description="serving data: model/adapter/knowledge/audit buckets, escalation queue, Valkey, ECR"))
        bucket = f"{prefix}-{env.account_id}"
        logs = AccessLogBucket(self, "access-logs", props=AccessLogBucketProps(
            name=f"{bucket}-logs", account_id=env.account_id, protect=protect))
        self.models_bucket = DataBucket(self, "models-bucket", key=key, access_logs=logs, props=DataBucketProps(
            name=f"{bucket}-models", noncurrent_version_days=sv.noncurrent_version_days, protect=protect))
        self.adapters_bucket = DataBucket(self, "adapters-bucket", key=key, access_logs=logs, props=DataBucketProps(
            name=f"{bucket}-adapters", noncurrent_version_days=sv.noncurrent_version_days, protect=protect))
        self.knowledge_bucket = DataBucket(self, "knowledge-bucket", key=key, access_logs=logs, props=DataBucketProps(
            name=f"{bucket}-knowledge", noncurrent_version_days=sv.noncurrent_version_days, protect=protect))
        self.audit_bucket = DataBucket(self, "audit-bucket", key=key, access_logs=logs, props=DataBucketProps(
            name=f"{bucket}-audit", object_lock_days=sv.audit_retention_days, protect=protect))
        # the router's usage ledger (tierwise_router/shipper.py): what every settled request cost, locked for as long
        # as the audit trail and expired after it; entries are deduplicated on read, so no overwrite is ever needed
        self.ledger_bucket = DataBucket(self, "ledger-bucket", key=key, access_logs=logs, props=DataBucketProps(
            name=f"{bucket}-ledger", object_lock_days=sv.audit_retention_days, expiration_days=sv.audit_retention_days,
            noncurrent_version_days=sv.noncurrent_version_days, protect=protect))
        self.escalations = EscalationQueue(self, "escalation-queue", key=key, props=EscalationQueueProps(
            name=f"{prefix}-escalations", retention_days=sv.escalation_retention_days, max_receives=sv.escalation_max_receives))
        ValkeyCache(self, "budget-cache", key=key, props=ValkeyCacheProps(
            name=prefix, vpc_id=network.vpc.vpc_id, subnet_ids=network.vpc.private_subnet_ids,
            client_security_group_id=eks.cluster.vpc_config.cluster_security_group_id,
            node_type=sv.valkey_node_type, replicas=sv.valkey_replicas))
        repos = Construct(self, "images")
        images = {s: EcrRepository(repos, s, key=key, props=EcrRepositoryProps(name=f"tierwise/{s}", protect=protect)).image(
            sv.service_image_tag) for s in SERVICES}

        # vLLM from Docker Hub through the capacity stack's ECR cache: prod's egress allowlist has no Docker Hub
        vllm_image = capacity.images.image(sv.vllm_image)
        # the CSI driver the model servers' S3 volumes need; read-only to exactly the weights and adapters they mount
        weights = sorted({m.source for m in env.models} | {m.speculative_model for m in env.models if m.speculative_model})
        adapted = sorted(m.name for m in env.models if m.lora_adapters)
        MountpointS3CsiDriver(self, "s3-csi-driver", props=MountpointS3CsiDriverProps(
            role_name=f"{prefix}-s3-csi-driver", account_id=env.account_id, cluster_name=eks.cluster_name,
            cluster_arn=eks.cluster_arn, statements=(self.models_bucket.grant_read(weights, sid="Weights") if weights else [])
            + (self.adapters_bucket.grant_read(adapted, sid="Adapters") if adapted else [])))

        # -- model servers ------------------------------------------------------------------------
        NamespaceIsolation(self, "isolation", props=NamespaceIsolationProps(namespace=ns))
        self.model_servers: dict[str, VllmModelServer] = {}
        models = Construct(self, "models")
        for m in env.models:
            pool = env.gpu_pools[m.pool]
            cpu, mem = pool.pod_resources(m.gpu.count if isinstance(m.gpu, FullGpus) else None)
            s = Construct(models, m.name)
            server = VllmModelServer(s, "server", models_bucket=self.models_bucket, adapters_bucket=self.adapters_bucket,
                                     props=VllmModelServerProps(
                model=m.name, namespace=ns, image=vllm_image, source=m.source, pool=m.pool, gpu_kind=m.gpu.kind,
                gpus=m.gpu.count if isinstance(m.gpu, FullGpus) else 1, gpus_per_node=pool.max_gpus_per_node,
                claim_template=claim_template_name(m.gpu.profile) if isinstance(m.gpu, MigSlice) else None,
                cpu=cpu, memory_gib=mem, precision=m.precision, max_model_len=m.max_model_len,
                adapters=[LoraAdapterSpec(a.name, a.rank) for a in m.lora_adapters], max_loras=m.max_loras,
                max_lora_rank=m.max_lora_rank, speculative_source=m.speculative_model, load_timeout_s=sv.model_load_timeout_s,
                role_name=f"{prefix}-vllm-{m.name}", served_model_aliases=(m.canary.of,) if m.canary else (), **identity))
            self.model_servers[m.name] = server
            QueueScaledObject(s, "autoscaler", props=QueueScaledObjectProps(
                name=server.workload_name, namespace=ns, target_kind=server.kind, target_api_version=server.api_version,
                min_replicas=m.replicas.min, max_replicas=m.replicas.max, prometheus_url=sv.prometheus_url,
                cooldown_s=sv.scale_down_cooldown_s, labels=server.labels, queues=[
                    PrometheusQueue("vllm-waiting", f'sum(vllm:num_requests_waiting{{namespace="{ns}",model_name="{m.name}"}})',
                                    threshold=sv.queue_target_waiting),
                    # wakes a model at zero replicas: the router still receives (and falls back on) its requests
                    PrometheusQueue("router-demand", f'sum(rate(tierwise_router_requests_total{{model="{m.name}"}}[2m])) * 60',
                                    threshold=sv.router_queue_target)]))

        # -- inference Gateway (Gateway API Inference Extension): Gateway, per model a pool + picker, routes --------
        self.inference_gateway = self._inference_gateway(env, ns, capacity) if sv.inference_gateway.enabled else None

        # -- platform services --------------------------------------------------------------------
        svc_common = {"namespace": ns, "node_selector": env.system.node_selector, "tolerations": env.system.tolerations,
                      **identity}
        guardrails = self._service("guardrails", sv.guardrails, images, sv.guardrails_endpoint.port, svc_common,
                                   statements=self.escalations.grant_send() + self.audit_bucket.grant_write("guardrails", sid="Audit"),
                                   env={"TIERWISE_GUARDRAILS_ENV": "prod" if protect else "dev",
                                        "TIERWISE_GUARDRAILS_CONFIG_PATH": f"{CONFIG_DIR}/guardrails.json",
                                        "AWS_REGION": env.region},
                                   config_files={"guardrails.json": json.dumps({
                                       "blocked_message": env.bedrock.guardrail.blocked_message,
                                       "pii_entities_to_anonymize": env.bedrock.guardrail.pii_entities_to_anonymize,
                                       "escalation_queue_url": self.escalations.queue_url,
                                       "audit_bucket": self.audit_bucket.bucket_name, "audit_prefix": "guardrails/",
                                       "region": env.region}, indent=2, sort_keys=True) + "\n"})
        rag = self._service("rag", sv.rag, images, sv.rag_endpoint.port, svc_common,
                            statements=self.knowledge_bucket.grant_read(["anchored"], sid="Knowledge", versions=True),
                            env={"TIERWISE_RAG_ENV": "dev" if env.name == "dev" else "prod",
                                 "TIERWISE_RAG_QDRANT_URL": f"http://qdrant.{ns}.svc:{QDRANT_PORTS['http']}",
                                 "AWS_REGION": env.region},
                            secret_env=[SecretEnv("TIERWISE_RAG_TEAMS", sv.rag_teams_secret, "teams.json")])
        router_base = render_router_base_file(router_config_props(
            env, model_urls={name: srv.service_url for name, srv in self.model_servers.items()},
            rag_url=rag.url, guardrails_url=guardrails.url,
            gateway_url=self.inference_gateway.url if self.inference_gateway else None))
        keys_dir = f"{CONFIG_DIR}/secrets/{sv.router_api_keys_secret}"
        router = self._service(
            "router", sv.router, images, sv.router_endpoint.port, svc_common, create_hpa=False,
            statements=([self._bedrock_statement(env)] if env.bedrock.allowed_model_ids else [])
            + self.ledger_bucket.grant_write(LEDGER_PREFIX, sid="Ledger"),
            env={"TIERWISE_ROUTER_ENV": "dev" if env.name == "dev" else "prod", "TIERWISE_ROUTER_CONFIG_PATH": "/tmp/router.json",
                 "TIERWISE_ROUTER_BUDGET_BACKEND": "redis", "TIERWISE_ROUTER_LEDGER_PATH": "/tmp/ledger/ledger.jsonl",
                 # /tmp is the pod's emptyDir: with durable acks (the default) a request is answered only once S3
                 # holds its ledger entry, so losing the pod loses nothing settled; the local backlog stays well
                 # under the volume. `local` trades that for latency (serving.router_ledger_ack).
                 "TIERWISE_ROUTER_LEDGER_S3_BUCKET": self.ledger_bucket.bucket_name,
                 "TIERWISE_ROUTER_LEDGER_S3_PREFIX": LEDGER_PREFIX, "TIERWISE_ROUTER_LEDGER_S3_REGION": env.region,
                 "TIERWISE_ROUTER_LEDGER_ACK": sv.router_ledger_ack,
                 "TIERWISE_ROUTER_LEDGER_SHIP_MIN_INTERVAL_MS": str(sv.router_ledger_ship_interval_ms),
                 "TIERWISE_ROUTER_LEDGER_LOCAL_MAX_BYTES": str(256 << 20),
                 "AWS_REGION": env.region},
            secret_env=[SecretEnv("TIERWISE_ROUTER_REDIS_URL", sv.router_redis_secret, "redis-url")] + (
                [SecretEnv("TIERWISE_ROUTER_RAG_API_KEY", sv.rag_router_key_secret, "api-key")]
                if sv.router_rag_collections else []),
            config_files={BASE_FILE: router_base}, secret_mounts=[sv.router_api_keys_secret],
            init_containers=[{"name": "render-config", "image": images["router"], "command": ["/bin/sh", "-c"], "args": [
                f"python -c \"$MERGE\" {CONFIG_DIR}/{BASE_FILE} {keys_dir}/{KEYS_FILE} /tmp/router.json && "
                "mkdir -p /tmp/ledger && tierwise-router check-config /tmp/router.json"],
                "env": [{"name": "MERGE", "value": MERGE_SCRIPT}]}])
        QueueScaledObject(self, "router-autoscaler", props=QueueScaledObjectProps(
            name="router", namespace=ns, target_kind="Deployment", target_api_version="apps/v1",
            min_replicas=sv.router.replicas.min, max_replicas=sv.router.replicas.max, prometheus_url=sv.prometheus_url,
            cooldown_s=300, cpu_percent=sv.router.target_cpu_percent, labels=router.labels, queues=[
                PrometheusQueue("front-door-queue", f'sum(tierwise_router_queue_depth{{namespace="{ns}"}})',
                                threshold=sv.router_queue_target)]))
        HelmChart(self, "qdrant", props=HelmChartProps(
            release_name="qdrant", chart="qdrant", repository="https://qdrant.github.io/qdrant-helm",
            version=QDRANT_CHART_VERSION, namespace=ns, create_namespace=False, values={
                "replicaCount": sv.qdrant_replicas, "persistence": {"size": f"{sv.qdrant_storage_gib}Gi"},
                "config": {"cluster": {"enabled": sv.qdrant_replicas > 1}, "telemetry_disabled": True},
                "podDisruptionBudget": {"enabled": sv.qdrant_replicas > 1, "maxUnavailable": 1},
                "podLabels": {"tierwise.io/team": "shared"}, **env.system.helm_values(),
                "image": {"repository": capacity.images.repository("docker.io/qdrant/qdrant")}}))

        # -- network: exactly the flows the services need --------------------------------------
        self._network_policies(env, ns, router.selector, rag.selector, guardrails.selector)

    # ------------------------------------------------------------------------------------------
    def _inference_gateway(self, env: ServingSlice, ns: str, capacity: CapacityStack) -> InferenceGateway:
        ig = env.serving.inference_gateway
        placement = {"node_selector": env.system.node_selector, "tolerations": env.system.tolerations}
        gateway = InferenceGateway(self, "inference-gateway", props=InferenceGatewayProps(
            namespace=ns, images=capacity.images, replicas=ig.replicas, **placement))
        system_affinity = env.system.node_affinity()
        self.inference_pools: dict[str, ModelInferencePool] = {}
        scope = Construct(self, "inference-pools")
        for m in env.models:
            server = self.model_servers[m.name]
            labels = dict(server.selector)
            if server.nodes > 1:  # a LeaderWorkerSet group: only its leader serves HTTP
                labels["leaderworkerset.sigs.k8s.io/worker-index"] = "0"
            self.inference_pools[m.name] = ModelInferencePool(scope, m.name, props=ModelInferencePoolProps(
                name=m.name, namespace=ns, model_server_labels=labels, images=capacity.images, target_port=VLLM_PORT,
                replicas=ig.picker_replicas, cpu=ig.picker_cpu, memory_mib=ig.picker_memory_mib,
                node_affinity=system_affinity, tolerations=env.system.tolerations))
        routes = Construct(self, "model-routes")
        canaries = {m.canary.of: m for m in env.models if m.canary}
        for m in env.models:
            if m.canary:
                continue  # reachable under its stable model's name, by weight
            c = canaries.get(m.name)
            ModelRoute(routes, m.name, props=ModelRouteProps(
                model=m.name, namespace=ns, gateway=gateway.props.name,
                stable=PoolWeight(m.name, 100 - (c.canary.weight if c else 0)),
                canary=PoolWeight(c.name, c.canary.weight) if c else None))
        return gateway

    def _service(self, name: str, scaling, images: dict[str, str], port: int, common: dict, **kw) -> PlatformService:
        return PlatformService(self, name, props=PlatformServiceProps(
            name=name, component=name, image=images[name], port=port, cpu=scaling.cpu, memory_mib=scaling.memory_mib,
            min_replicas=scaling.replicas.min, max_replicas=scaling.replicas.max, target_cpu_percent=scaling.target_cpu_percent,
            role_name=f"{self.env.prefix}-{name}", **common, **kw))

    @staticmethod
    def _bedrock_statement(env: ServingSlice):
        from tierwise.constructs.governance.bedrock_access import INVOKE_ACTIONS
        from tierwise.constructs.iam import Statement

        return Statement(INVOKE_ACTIONS, list(env.bedrock_invoke_arns), sid="InvokeAllowedModelsOnly")

    def _network_policies(self, env: ServingSlice, ns: str, router: dict, rag: dict, guardrails: dict) -> None:
        vpc = env.vpc_cidr
        monitoring = namespaces([env.serving.monitoring_namespace])
        clients = namespaces(env.client_namespaces)
        sv = env.serving
        router_port, rag_port, guardrails_port = sv.router_endpoint.port, sv.rag_endpoint.port, sv.guardrails_endpoint.port
        pol = Construct(self, "network-policies")
        aws_apis = {"to": [cidr(vpc)], "ports": tcp(443)}  # interface VPC endpoints (Bedrock, SQS, STS) in the VPC
        pod_identity = {"to": [cidr(POD_IDENTITY_AGENT_CIDR)], "ports": tcp(80)}
        kube_api = {"to": [cidr(vpc)], "ports": tcp(443)}  # the cluster's private API endpoint (ENIs in the VPC)
        model_peers = [pods(s.selector) for s in self.model_servers.values()]
        # S3 through the S3 gateway endpoint: public S3 ranges, bounded by the bucket policies and the roles;
        # NetworkPolicy cannot name a prefix list, so 443 is open for the pods that use S3 only.
        public_443 = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                                         "169.254.0.0/16"]}}], "ports": tcp(443)}

        def np(id_: str, sel: dict, ingress=(), egress=()):
            NetworkPolicy(pol, id_, props=NetworkPolicyProps(name=id_, namespace=ns, pod_selector=sel,
                                                            ingress=list(ingress), egress=list(egress)))

        gw = self.inference_gateway
        gateway_pods = pods(gw.data_plane_selector) if gw else None
        pickers = [pods(p.picker_selector) for p in self.inference_pools.values()] if gw else []
        np("router", router,
           ingress=[{"from": [clients], "ports": tcp(router_port)}, {"from": [monitoring], "ports": tcp(router_port)}],
           egress=[*([{"to": model_peers, "ports": tcp(VLLM_PORT)}] if model_peers else []),
                   *([{"to": [gateway_pods], "ports": tcp(GATEWAY_PORT)}] if gw else []),
                   {"to": [pods(rag)], "ports": tcp(rag_port)}, {"to": [pods(guardrails)], "ports": tcp(guardrails_port)},
                   {"to": [cidr(vpc)], "ports": tcp(VALKEY_PORT)}, public_443, aws_apis, pod_identity])
        np("rag", rag,
           ingress=[{"from": [pods(router)], "ports": tcp(rag_port)}, {"from": [monitoring], "ports": tcp(rag_port)}],
           egress=[{"to": [pods(QDRANT_LABELS)], "ports": tcp(QDRANT_PORTS["http"], QDRANT_PORTS["grpc"])},
                   public_443, aws_apis, pod_identity])  # S3: the knowledge bucket
        np("guardrails", guardrails,
           ingress=[{"from": [pods(router)], "ports": tcp(guardrails_port)}, {"from": [monitoring], "ports": tcp(guardrails_port)}],
           egress=[public_443, aws_apis, pod_identity])
        if gw:
            # the Gateway's data plane: from the router, to the model servers its pickers choose, and its agent to the
            # controller; each picker: from the Gateway (ext-proc), to the model servers' /metrics and the API server
            np("inference-gateway", gw.data_plane_selector,
               ingress=[{"from": [pods(router)], "ports": tcp(GATEWAY_PORT)}],
               egress=[{"to": model_peers, "ports": tcp(VLLM_PORT)}, {"to": pickers, "ports": tcp(EPP_PORT)},
                       {"to": [pods(CONTROLLER_LABELS, namespace=CONTROLLER_NAMESPACE)], "ports": tcp(AGENT_PORT)}])
            for name, p in self.inference_pools.items():
                np(f"picker-{name}", p.picker_selector,
                   ingress=[{"from": [gateway_pods], "ports": tcp(EPP_PORT)}],
                   egress=[{"to": [pods(self.model_servers[name].selector)], "ports": tcp(VLLM_PORT)}, kube_api])
            # the controller's namespace: default-deny, then the agents in, the API server out
            iso = NamespaceIsolation(pol, "gateway-controller-isolation", props=NamespaceIsolationProps(
                namespace=CONTROLLER_NAMESPACE))
            for o in (iso.deny, iso.dns):
                o.manifest.node.add_dependency(gw.release)  # Helm creates the namespace
            ctrl = NetworkPolicy(pol, "gateway-controller", props=NetworkPolicyProps(
                name="gateway-controller", namespace=CONTROLLER_NAMESPACE, pod_selector=CONTROLLER_LABELS,
                ingress=[{"from": [pods(gw.data_plane_selector, namespace=ns)], "ports": tcp(AGENT_PORT)}],
                egress=[kube_api]))
            ctrl.node.add_dependency(gw.release)
        for name, s in self.model_servers.items():
            ingress = [{"from": [pods(router)], "ports": tcp(VLLM_PORT)}, {"from": [monitoring], "ports": tcp(VLLM_PORT)}]
            if gw:
                ingress.append({"from": [gateway_pods, *pickers], "ports": tcp(VLLM_PORT)})
            egress = []
            if s.nodes > 1:  # leader and workers of one group talk Ray/NCCL to each other
                ingress.append({"from": [pods(s.selector)], "ports": [{"protocol": "TCP", "port": 1024, "endPort": 65535}]})
                egress.append({"to": [pods(s.selector)], "ports": [{"protocol": "TCP", "port": 1024, "endPort": 65535}]})
            np(f"vllm-{name}", s.selector, ingress=ingress, egress=egress)
        # clients: every pod of a team namespace may call the router (their namespaces deny all else by default)
        for team in env.teams:
            for team_ns in team.namespaces:
                NetworkPolicy(pol, f"{team_ns}-to-router", props=NetworkPolicyProps(
                    name="allow-tierwise-router", namespace=team_ns, pod_selector={}, select_all_pods=True,
                    egress=[{"to": [pods(router, namespace=ns)], "ports": tcp(router_port)}]))
        qd = QDRANT_LABELS
        np("qdrant", qd,
           ingress=[{"from": [pods(rag)], "ports": tcp(QDRANT_PORTS["http"], QDRANT_PORTS["grpc"])},
                    {"from": [monitoring], "ports": tcp(QDRANT_PORTS["http"])},
                    *([{"from": [pods(qd)], "ports": tcp(QDRANT_PORTS["p2p"])}] if sv.qdrant_replicas > 1 else [])],
           egress=[{"to": [pods(qd)], "ports": tcp(QDRANT_PORTS["p2p"])}] if sv.qdrant_replicas > 1 else [])
