"""TW-NET-001: no security group allows egress to 0.0.0.0/0 or ::/0; node subnets route only through the firewall."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Resource, Result, as_list, result

ANY = {"0.0.0.0/0", "::/0"}
#: A security group that *is* the firewall path (e.g. an egress proxy in front of the firewall) carries this tag.
FIREWALL_PATH_TAG = ("tierwise.io/egress-path", "firewall")
NODE_SUBNET_TAGS = (("tierwise.io/subnet", "nodes"),)


def _sg_exempt(index: Index, sg: Resource | None) -> bool:
    if sg is None:
        return False
    k, v = FIREWALL_PATH_TAG
    return index.effective_tags(sg).get(k) == v


class EgressPath:
    meta = CheckMeta(
        id="TW-NET-001",
        title="Egress leaves the VPC only through the network firewall",
        severity="HIGH",
        categories=("NETWORKING",),
        resource_types=("aws_security_group", "aws_security_group_rule", "aws_vpc_security_group_egress_rule",
                        "aws_subnet", "aws_route", "aws_route_table"),
        rationale="A security group open to the internet or a node subnet with a default route around the firewall "
                  "lets a compromised pod exfiltrate data to any host, bypassing the FQDN allowlist.",
        fix="Scope security-group egress to the VPC CIDR or prefix lists; route node subnets' 0.0.0.0/0 to the "
            "firewall endpoint (constructs/network EgressFirewall) and add hosts to network.egress_allowlist.",
        protects="egress: nothing reaches the internet except through the FQDN allowlist",
    )

    def run(self, index: Index) -> Iterable[Result]:
        yield from self._security_groups(index)
        yield from self._node_routes(index)

    def _security_groups(self, index: Index) -> Iterable[Result]:
        m = self.meta
        for sg in index.of_type("aws_security_group"):
            bad = []
            for rule in as_list(sg.body.get("egress")):
                if isinstance(rule, dict):
                    cidrs = [str(c) for c in as_list(rule.get("cidr_blocks")) + as_list(rule.get("ipv6_cidr_blocks"))]
                    bad += [c for c in cidrs if c in ANY]
            if bad and not _sg_exempt(index, sg):
                yield result(m, FAIL, sg, f"{sg.address}: egress to {sorted(set(bad))}; scope it to the VPC CIDR or a "
                                          "prefix list", finding=f"Egress::{sorted(set(bad))[0]}")
            elif isinstance(sg.body.get("egress"), str):
                yield result(m, UNKNOWN, sg, f"{sg.address}: egress is an expression ({sg.body['egress']!r})")
            else:
                yield result(m, PASS, sg, f"{sg.address}: no egress to the internet")
        # Standalone egress rules, in both resource shapes: (rule, its destination CIDRs).
        rules = [(r, [str(c) for c in as_list(r.body.get("cidr_blocks")) + as_list(r.body.get("ipv6_cidr_blocks"))])
                 for r in index.of_type("aws_security_group_rule") if r.body.get("type") == "egress"]
        rules += [(r, [str(x) for x in (r.body.get("cidr_ipv4"), r.body.get("cidr_ipv6")) if x])
                  for r in index.of_type("aws_vpc_security_group_egress_rule")]
        for r, cidrs in rules:
            sg = index.resolve(r.stack, r.body.get("security_group_id"), "aws_security_group")
            bad = sorted({c for c in cidrs if c in ANY})
            if bad and not _sg_exempt(index, sg):
                yield result(m, FAIL, r, f"{r.address}: egress rule to {bad}; scope it to the VPC CIDR", finding=f"Egress::{bad[0]}")
            else:
                yield result(m, PASS, r, f"{r.address}: egress rule scoped")

    def _node_routes(self, index: Index) -> Iterable[Result]:
        m = self.meta
        tables: dict[int, list[tuple[str, dict, Resource]]] = {}
        for rt in index.of_type("aws_route_table"):
            tables[id(rt)] = [(str(x.get("cidr_block") or x.get("ipv6_cidr_block") or ""), x, rt)
                              for x in as_list(rt.body.get("route")) if isinstance(x, dict)]
        for route in index.of_type("aws_route"):
            rt = index.resolve(route.stack, route.body.get("route_table_id"), "aws_route_table")
            if rt is not None:
                dest = str(route.body.get("destination_cidr_block") or route.body.get("destination_ipv6_cidr_block") or "")
                tables[id(rt)].append((dest, route.body, route))
        assoc: dict[int, list[Resource]] = {}
        for a in index.of_type("aws_route_table_association"):
            sn = index.resolve(a.stack, a.body.get("subnet_id"), "aws_subnet")
            rt = index.resolve(a.stack, a.body.get("route_table_id"), "aws_route_table")
            if sn is not None and rt is not None:
                assoc.setdefault(id(sn), []).append(rt)
        for sn in index.of_type("aws_subnet"):
            tags = index.effective_tags(sn)
            if not any(tags.get(k) == v for k, v in NODE_SUBNET_TAGS):
                continue
            rts = assoc.get(id(sn), [])
            if not rts:
                yield result(m, FAIL, sn, f"{sn.address}: node subnet has no route table association (it would use the "
                                          "VPC main table); associate it with a table whose default route is the firewall")
                continue
            bad = []
            for rt in rts:
                for dest, body, src in tables.get(id(rt), []):
                    if dest not in ANY:
                        continue
                    target = str(body.get("vpc_endpoint_id") or "")
                    if "aws_networkfirewall_firewall." in target:
                        continue
                    hop = next((f"{k}={body[k]}" for k in ("nat_gateway_id", "gateway_id", "egress_only_gateway_id",
                                                            "transit_gateway_id", "network_interface_id", "vpc_endpoint_id",
                                                            "vpc_peering_connection_id") if body.get(k)), "unknown target")
                    bad.append(f"{dest} via {hop} ({src.address})")
            if bad:
                yield result(m, FAIL, sn, f"{sn.address}: node subnet routes around the firewall: {'; '.join(bad)}; point "
                                          "the default route at the firewall endpoint", finding=f"Route::{sn.name}")
            else:
                yield result(m, PASS, sn, f"{sn.address}: default route only through the network firewall")
