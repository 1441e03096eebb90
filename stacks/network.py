"""network: VPC across the environment's AZs, egress only through AWS Network Firewall, VPC
endpoints for AWS APIs, flow logs."""

from __future__ import annotations

from constructs import Construct

from tierwise.config.slices import NetworkSlice
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.network.egress_firewall import EgressFirewall, EgressFirewallProps
from tierwise.constructs.network.flow_logs import VpcFlowLogs, VpcFlowLogsProps
from tierwise.constructs.network.vpc import EgressVpc, EgressVpcProps
from tierwise.constructs.network.vpc_endpoints import VpcEndpoints, VpcEndpointsProps

from .base import TierwiseStack


class NetworkStack(TierwiseStack):
    layer = "network"

    def __init__(self, scope: Construct, env: NetworkSlice) -> None:
        super().__init__(scope, env)
        name = env.prefix
        net = env.network
        self.log_key = EncryptionKey(self, "log-key", props=EncryptionKeyProps(
            alias=f"{name}/network-logs", account_id=env.account_id, region=env.region,
            description="tierwise network logs (firewall, flow logs)", protect=env.protect_stateful,
            service_principals=[f"logs.{env.region}.amazonaws.com"]))
        self.vpc = EgressVpc(self, "vpc", props=EgressVpcProps(
            name=name, cidr=net.vpc_cidr, availability_zones=list(env.availability_zones), cluster_name=env.prefix))
        EgressFirewall(self, "egress-firewall", vpc=self.vpc, props=EgressFirewallProps(
            name=name, allowed_domains=net.egress_allowlist, log_retention_days=net.flow_log_retention_days,
            log_key=self.log_key, protect=env.protect_stateful))
        VpcEndpoints(self, "endpoints", vpc=self.vpc, props=VpcEndpointsProps(
            name=name, region=env.region, interface_services=net.interface_endpoints))
        VpcFlowLogs(self, "flow-logs", vpc=self.vpc, props=VpcFlowLogsProps(
            name=name, account_id=env.account_id, retention_days=net.flow_log_retention_days, log_key=self.log_key))
