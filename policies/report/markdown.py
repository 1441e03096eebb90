"""A pull-request comment: verdict, failures first, suppressed, cost table, diff vs base."""

from __future__ import annotations

from tierwise.policies.engine import FAIL, SUPPRESSED, UNKNOWN


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def cost_table(cost: dict) -> list[str]:
    lines = ["| team | budget | GPU worst case | Bedrock | total | headroom |", "|---|---:|---:|---:|---:|---:|"]
    for name, t in cost["teams"].items():
        b = t["budget_usd"]
        head = f"{(b - t['total_usd']) / b:.0%}" if b else "n/a"
        bed = "n/a" if t["bedrock_usd"] is None else f"${t['bedrock_usd']:,.0f}"
        lines.append(f"| {name} | {'$' + format(b, ',.0f') if b else 'none'} | ${t['gpu_usd']:,.0f} | {bed} | "
                     f"${t['total_usd']:,.0f} | {head} |")
    lines += ["", "| pool | GPU limit | worst fleet | $/month |", "|---|---:|---|---:|"]
    for name, p in cost["pools"].items():
        lines.append(f"| {name} | {p['gpu_limit']:g} | {p['worst_instances']} x {p['worst_instance_type']} | ${p['monthly_usd']:,.0f} |")
    plat = cost.get("platform")
    if plat:
        usd = lambda v, st="bounded": st if v is None else f"${v:,.0f}"  # noqa: E731
        lines += ["", "| platform fence (at its limit) | kind | limit | worst fleet | $/month |", "|---|---|---|---|---:|"]
        lines += [f"| {f['name']} | {f['kind']} | {_cell(f['limit'])} | {_cell(f['worst_fleet'])} | {usd(f['monthly_usd'], f['status'])} |"
                  for f in plat["fleets"]]
        bed = "n/a" if plat["bedrock_usd"] is None else usd(plat["bedrock_usd"])
        lines += [f"| Bedrock token budgets | | | | {bed} |",
                  f"| **platform worst case** vs budget {usd(plat['budget_usd'], 'none')} | | | | **{usd(plat['total_usd'], plat['total_status'])}** |"]
    return lines


def diff_table(diff: dict) -> list[str]:
    lines = ["| | base | this change | delta |", "|---|---:|---:|---:|"]
    for k, v in diff.items():
        lines.append(f"| {k} | ${v['base']:,.0f} | ${v['head']:,.0f} | {v['delta']:+,.0f} |")
    return lines


def render(rep) -> str:
    c = rep.counts()
    ok = rep.exit_code == 0
    out = [f"## {'✅' if ok else '❌'} tierwise policy — `{rep.environment}`", "",
           f"**{c['failed']} failed**, {c['unknown']} unknown, {c['errors']} errors, {c['suppressed']} suppressed, "
           f"{c['passed']} passed (pack `{rep.pack}`).", ""]
    bad = [r for r in rep.results if r.status in (FAIL, UNKNOWN)]
    if bad:
        out += ["### Failures", "", "| severity | check | resource | what is wrong | fix |", "|---|---|---|---|---|"]
        for r in bad:
            out.append(f"| {r.severity} | `{r.full_id}` | `{_cell(r.path or r.address)}` | {_cell(r.message)} | {_cell(r.fix)} |")
        out.append("")
    sup = [r for r in rep.results if r.status == SUPPRESSED]
    if sup:
        out += ["<details><summary>Suppressed ({})</summary>".format(len(sup)), "",
                "| check | resource | reason | owner | expires |", "|---|---|---|---|---|"]
        for r in sup:
            s = r.suppression or {}
            out.append(f"| `{r.full_id}` | `{_cell(r.path or r.address)}` | {_cell(s.get('reason', ''))} | {s.get('owner', '')} | {s.get('expires', '')} |")
        out += ["", "</details>", ""]
    if rep.cost:
        out += ["### Worst-case monthly spend", ""] + cost_table(rep.cost) + [""]
    if rep.cost_diff:
        out += ["### Cost change vs base", ""] + diff_table(rep.cost_diff) + [""]
    for n in rep.notes:
        out.append(f"> note: {n}")
    return "\n".join(out).rstrip() + "\n"
