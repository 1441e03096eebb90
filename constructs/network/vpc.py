"""`EgressVpc`: a VPC whose node subnets have no direct path to the internet.

Per availability zone it creates a private node subnet, a firewall subnet and a public subnet with
a NAT gateway, plus one route table each. `EgressFirewall` then points the node subnets' default
route at its endpoint, so the only way out is node -> firewall -> NAT -> internet gateway.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.default_security_group import DefaultSecurityGroup
from cdktn_provider_aws.eip import Eip
from cdktn_provider_aws.internet_gateway import InternetGateway
from cdktn_provider_aws.nat_gateway import NatGateway
from cdktn_provider_aws.route import Route
from cdktn_provider_aws.route_table import RouteTable
from cdktn_provider_aws.route_table_association import RouteTableAssociation
from cdktn_provider_aws.subnet import Subnet
from cdktn_provider_aws.vpc import Vpc


@dataclass(frozen=True)
class EgressVpcProps:
    name: str
    cidr: str
    availability_zones: list[str]
    #: Cluster name for the Kubernetes/Karpenter discovery tags on node subnets.
    cluster_name: str


@dataclass(frozen=True)
class SubnetPlan:
    az: str
    private: str
    firewall: str
    public: str


def plan_subnets(cidr: str, azs: list[str]) -> list[SubnetPlan]:
    """Carve the VPC: 8 equal blocks; the first hold node subnets, the last holds public + firewall."""
    vpc = ipaddress.ip_network(cidr)
    blocks = list(vpc.subnets(prefixlen_diff=3))
    if len(azs) > len(blocks) - 1:
        raise ValueError(f"{cidr} cannot hold {len(azs)} availability zones")
    edge = blocks[-1]
    public = list(edge.subnets(new_prefix=min(edge.prefixlen + 5, 26)))
    firewall = list(public[-1].subnets(new_prefix=28))
    return [SubnetPlan(az, str(blocks[i]), str(firewall[i]), str(public[i])) for i, az in enumerate(azs)]


class EgressVpc(Construct):
    """Creates `aws_vpc`, its `aws_default_security_group` with no rules, `aws_internet_gateway`, and per AZ: three `aws_subnet`s, an `aws_eip`, an
    `aws_nat_gateway` and three `aws_route_table`s with their associations."""

    def __init__(self, scope: Construct, id: str, *, props: EgressVpcProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.vpc = Vpc(self, "vpc", cidr_block=props.cidr, enable_dns_hostnames=True, enable_dns_support=True, tags={"Name": props.name})
        # Adopt the VPC's default security group and strip its rules: nothing may rely on it.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, ingress=[], egress=[],
                             tags={"Name": f"{props.name}-default-unused"})
        self.igw = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": props.name})
        self.plan = plan_subnets(props.cidr, props.availability_zones)
        self.private_subnets: list[Subnet] = []
        self.private_route_tables: list[RouteTable] = []
        self.firewall_subnets: list[Subnet] = []
        self.firewall_route_tables: list[RouteTable] = []
        self.public_route_tables: list[RouteTable] = []
        self.nat_gateways: list[NatGateway] = []
        for p in self.plan:
            az = Construct(self, p.az)
            public = Subnet(az, "public", vpc_id=self.vpc.id, cidr_block=p.public, availability_zone=p.az,
                            map_public_ip_on_launch=False, tags={"Name": f"{props.name}-public-{p.az}", "tierwise.io/subnet": "public"})
            fw = Subnet(az, "firewall", vpc_id=self.vpc.id, cidr_block=p.firewall, availability_zone=p.az,
                        tags={"Name": f"{props.name}-firewall-{p.az}", "tierwise.io/subnet": "firewall"})
            private = Subnet(az, "private", vpc_id=self.vpc.id, cidr_block=p.private, availability_zone=p.az, tags={
                "Name": f"{props.name}-nodes-{p.az}", "tierwise.io/subnet": "nodes",
                "kubernetes.io/role/internal-elb": "1", "karpenter.sh/discovery": props.cluster_name})
            eip = Eip(az, "nat-ip", domain="vpc", tags={"Name": f"{props.name}-nat-{p.az}"})
            nat = NatGateway(az, "nat", allocation_id=eip.allocation_id, subnet_id=public.id, tags={"Name": f"{props.name}-{p.az}"})
            rt_public = RouteTable(az, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-public-{p.az}"})
            Route(az, "public-default", route_table_id=rt_public.id, destination_cidr_block="0.0.0.0/0", gateway_id=self.igw.id)
            RouteTableAssociation(az, "public-assoc", route_table_id=rt_public.id, subnet_id=public.id)
            rt_fw = RouteTable(az, "firewall-rt", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-firewall-{p.az}"})
            Route(az, "firewall-default", route_table_id=rt_fw.id, destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)
            RouteTableAssociation(az, "firewall-assoc", route_table_id=rt_fw.id, subnet_id=fw.id)
            rt_private = RouteTable(az, "private-rt", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-nodes-{p.az}"})
            RouteTableAssociation(az, "private-assoc", route_table_id=rt_private.id, subnet_id=private.id)
            self.private_subnets.append(private)
            self.private_route_tables.append(rt_private)
            self.firewall_subnets.append(fw)
            self.firewall_route_tables.append(rt_fw)
            self.public_route_tables.append(rt_public)
            self.nat_gateways.append(nat)

    @property
    def vpc_id(self) -> str:
        return self.vpc.id

    @property
    def private_subnet_ids(self) -> list[str]:
        return [s.id for s in self.private_subnets]
