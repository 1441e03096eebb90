"""`EgressFirewall`: AWS Network Firewall with a stateful domain allowlist, and the routes that force
all node egress through it (default drop for anything not on the list)."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.networkfirewall_firewall import NetworkfirewallFirewall
from cdktn_provider_aws.networkfirewall_firewall_policy import NetworkfirewallFirewallPolicy
from cdktn_provider_aws.networkfirewall_logging_configuration import NetworkfirewallLoggingConfiguration
from cdktn_provider_aws.networkfirewall_rule_group import NetworkfirewallRuleGroup
from cdktn_provider_aws.route import Route

from ..encryption_key import EncryptionKey
from ..jsii_structs import struct_list
from .vpc import EgressVpc


@dataclass(frozen=True)
class EgressFirewallProps:
    name: str
    #: Domains nodes may reach over TLS (SNI) or HTTP (Host). `.example.com` covers subdomains.
    allowed_domains: list[str]
    log_retention_days: int
    log_key: EncryptionKey
    protect: bool = True


class EgressFirewall(Construct):
    """Creates `aws_networkfirewall_rule_group` (stateful ALLOWLIST), `aws_networkfirewall_firewall_policy`
    (strict order, drop established by default), `aws_networkfirewall_firewall` in the firewall subnets,
    alert/flow logging to two `aws_cloudwatch_log_group`s, and per AZ the `aws_route`s that send node
    egress to the firewall endpoint and return traffic back through it."""

    def __init__(self, scope: Construct, id: str, *, vpc: EgressVpc, props: EgressFirewallProps) -> None:
        super().__init__(scope, id)
        if not props.allowed_domains:
            raise ValueError("EgressFirewall needs at least one allowed domain (AWS APIs use VPC endpoints; add '.amazonaws.com' for the rest)")
        self.rule_group = NetworkfirewallRuleGroup(
            self, "allowlist", name=f"{props.name}-egress-allowlist", capacity=max(100, 10 * len(props.allowed_domains)),
            type="STATEFUL",
            rule_group={
                "rule_variables": {"ip_sets": struct_list([{"key": "HOME_NET", "ip_set": {"definition": [vpc.props.cidr]}}])},
                "rules_source": {"rules_source_list": {
                    "generated_rules_type": "ALLOWLIST", "target_types": ["TLS_SNI", "HTTP_HOST"],
                    "targets": sorted(props.allowed_domains)}},
                "stateful_rule_options": {"rule_order": "STRICT_ORDER"},
            },
            encryption_configuration={"type": "CUSTOMER_KMS", "key_id": props.log_key.key_arn},
        )
        self.policy = NetworkfirewallFirewallPolicy(
            self, "policy", name=f"{props.name}-egress",
            firewall_policy={
                "stateless_default_actions": ["aws:forward_to_sfe"],
                "stateless_fragment_default_actions": ["aws:forward_to_sfe"],
                "stateful_engine_options": {"rule_order": "STRICT_ORDER"},
                "stateful_default_actions": ["aws:drop_established", "aws:alert_established"],
                "stateful_rule_group_reference": struct_list([{"resource_arn": self.rule_group.arn, "priority": 100}]),
            },
            encryption_configuration={"type": "CUSTOMER_KMS", "key_id": props.log_key.key_arn},
        )
        self.firewall = NetworkfirewallFirewall(
            self, "firewall", name=f"{props.name}-egress", vpc_id=vpc.vpc_id, firewall_policy_arn=self.policy.arn,
            subnet_mapping=struct_list([{"subnet_id": s.id} for s in vpc.firewall_subnets]),
            delete_protection=props.protect, subnet_change_protection=props.protect,
            encryption_configuration={"type": "CUSTOMER_KMS", "key_id": props.log_key.key_arn},
        )
        logs = {}
        for kind in ("alert", "flow"):
            logs[kind] = CloudwatchLogGroup(
                self, f"{kind}-logs", name=f"/tierwise/{props.name}/network-firewall/{kind}",
                retention_in_days=props.log_retention_days, kms_key_id=props.log_key.key_arn,
            )
        NetworkfirewallLoggingConfiguration(
            self, "logging", firewall_arn=self.firewall.arn,
            logging_configuration={"log_destination_config": struct_list([
                {"log_destination_type": "CloudWatchLogs", "log_type": kind.upper(),
                 "log_destination": {"logGroup": logs[kind].name}} for kind in ("alert", "flow")])},
        )
        for plan, private_rt, public_rt in zip(vpc.plan, vpc.private_route_tables, vpc.public_route_tables):
            endpoint = self.endpoint_id(plan.az)
            az = Construct(self, plan.az)
            Route(az, "nodes-egress", route_table_id=private_rt.id, destination_cidr_block="0.0.0.0/0", vpc_endpoint_id=endpoint)
            Route(az, "nodes-return", route_table_id=public_rt.id, destination_cidr_block=plan.private, vpc_endpoint_id=endpoint)

    def endpoint_id(self, az: str) -> str:
        """The firewall's endpoint in one AZ (resolved by Terraform from the firewall's sync states)."""
        return (
            "${element([for ss in tolist(" + self.firewall.fqn + ".firewall_status[0].sync_states) : "
            'ss.attachment[0].endpoint_id if ss.availability_zone == "' + az + '"], 0)}'
        )
