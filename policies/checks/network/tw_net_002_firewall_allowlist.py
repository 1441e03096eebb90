"""TW-NET-002: the firewall allowlist has no bare or over-broad wildcard."""

from __future__ import annotations

import re
from typing import Iterable

from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, as_list, result

#: Public suffixes that are registrable-domain-like but shared by strangers (subset; no PSL download offline).
SHARED_SUFFIXES = {"co.uk", "com.au", "co.jp", "com.br", "com.cn", "co.in", "github.io", "herokuapp.com", "s3.amazonaws.com",
                   "cloudfront.net", "azurewebsites.net", "appspot.com", "blob.core.windows.net", "ngrok.io", "workers.dev"}
HOST = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")


def overbroad(target: str) -> str:
    """Why an allowlist target is too broad, or '' when it is fine."""
    t = target.strip().lower()
    if t in ("", "*", ".", "*.*", ".*"):
        return "matches every host"
    base = t[2:] if t.startswith("*.") else t[1:] if t.startswith(".") else t
    if "*" in base or "?" in base:
        return "has a wildcard inside the name"
    if not HOST.match(base):
        return "is not a host name"
    if "." not in base:
        return f"allows a whole top-level domain (.{base})"
    if base in SHARED_SUFFIXES and t != base:
        return f"allows every tenant of the shared suffix {base}"
    return ""


class FirewallAllowlist:
    meta = CheckMeta(
        id="TW-NET-002",
        title="The egress firewall allowlist names domains, never bare or top-level wildcards",
        severity="HIGH",
        categories=("NETWORKING",),
        resource_types=("aws_networkfirewall_rule_group",),
        rationale="A `*` or `*.com` entry turns the allowlist into allow-all; the firewall then proves nothing.",
        fix="List exact hosts (api.github.com) or one organisation's subdomains (.example.com) in "
            "network.egress_allowlist of environments/<env>.yaml.",
        protects="egress: the FQDN allowlist stays an allowlist",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        for rg in index.of_type("aws_networkfirewall_rule_group"):
            groups = as_list(rg.body.get("rule_group"))
            lists = []
            for g in groups:
                if not isinstance(g, dict):
                    continue
                for src in as_list(g.get("rules_source")):
                    if isinstance(src, dict):
                        lists += [x for x in as_list(src.get("rules_source_list")) if isinstance(x, dict)]
            allow = [x for x in lists if x.get("generated_rules_type") == "ALLOWLIST"]
            if not allow:
                continue
            bad = []
            for lst in allow:
                targets = lst.get("targets")
                if isinstance(targets, str):
                    yield result(m, UNKNOWN, rg, f"{rg.address}: targets is an expression ({targets!r})")
                    break
                for t in as_list(targets):
                    why = overbroad(str(t))
                    if why:
                        bad.append(t)
                        yield result(m, FAIL, rg, f"{rg.address}: allowlist entry {t!r} {why}; list exact hosts or one "
                                                  "organisation's domain in network.egress_allowlist", finding=f"Target::{t}")
            else:
                if not bad:
                    n = sum(len(as_list(x.get('targets'))) for x in allow)
                    yield result(m, PASS, rg, f"{rg.address}: {n} allowlist entries, none over-broad")
