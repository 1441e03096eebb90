"""`VpcEndpoints`: private paths to AWS APIs so node traffic to them never crosses the firewall or NAT."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.security_group import SecurityGroup
from cdktn_provider_aws.vpc_endpoint import VpcEndpoint

from ..jsii_structs import struct_list
from .vpc import EgressVpc


@dataclass(frozen=True)
class VpcEndpointsProps:
    name: str
    region: str
    #: Interface endpoint service suffixes, e.g. `bedrock-runtime`, `ecr.dkr`.
    interface_services: list[str]


class VpcEndpoints(Construct):
    """Creates an `aws_security_group` (HTTPS from the VPC only, no egress rules), one interface
    `aws_vpc_endpoint` per service in the node subnets with private DNS, and the S3 and DynamoDB
    gateway endpoints on the node route tables."""

    def __init__(self, scope: Construct, id: str, *, vpc: EgressVpc, props: VpcEndpointsProps) -> None:
        super().__init__(scope, id)
        self.security_group = SecurityGroup(
            self, "sg", name=f"{props.name}-vpc-endpoints", description="HTTPS to AWS interface endpoints from inside the VPC",
            vpc_id=vpc.vpc_id,
            ingress=struct_list([{"description": "HTTPS from the VPC", "protocol": "tcp", "from_port": 443, "to_port": 443,
                                  "cidr_blocks": [vpc.props.cidr]}]),
            egress=[],
        )
        self.endpoints: dict[str, VpcEndpoint] = {}
        for svc in props.interface_services:
            self.endpoints[svc] = VpcEndpoint(
                self, svc.replace(".", "-"), vpc_id=vpc.vpc_id, service_name=f"com.amazonaws.{props.region}.{svc}",
                vpc_endpoint_type="Interface", private_dns_enabled=True, subnet_ids=vpc.private_subnet_ids,
                security_group_ids=[self.security_group.id],
            )
        self.s3 = VpcEndpoint(
            self, "s3", vpc_id=vpc.vpc_id, service_name=f"com.amazonaws.{props.region}.s3", vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in vpc.private_route_tables],
        )
        # Agent checkpoints (DynamoDB) stay inside the VPC too; gateway endpoints cost nothing.
        self.dynamodb = VpcEndpoint(
            self, "dynamodb", vpc_id=vpc.vpc_id, service_name=f"com.amazonaws.{props.region}.dynamodb",
            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in vpc.private_route_tables],
        )
