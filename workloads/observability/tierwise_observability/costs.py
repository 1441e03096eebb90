"""Dual cost report: token costs (router ledger) joined with GPU infrastructure costs.

Inputs
------
- **Router ledger** (`workloads/router`, `ledger.py`): lines `<crc32 hex8> <json>`; a line whose
  checksum fails (a torn tail) is skipped and counted. Fields used: ts, team, model, tier,
  prompt_tokens, completion_tokens, cost_nano_usd.
- **GPU usage samples** (`gpu-usage/v1`, JSON lines, one per GPU node per sampling period; produced
  by `tierwise report snapshot` from `kubectl get -o json`, or any recorder):
  `{"schema": "gpu-usage/v1", "ts": "2026-01-05T10:00:00Z", "interval_s": 300, "node": "ip-…",
    "instance_type": "g6.12xlarge", "capacity_type": "spot", "region": "us-west-2", "node_gpus": 4,
    "usd_per_hour": 1.65,            # optional: the price actually paid (spot); else price book
    "pods": [{"namespace": "tierwise", "pod": "vllm-llama-8b-0", "team": "shared",
              "model": "llama-8b", "gpus": 1.0}]}`
  A MIG slice counts as its fraction of a GPU (3g.20gb = 3/7).
- **Price book**: `prices.json` with `ec2_on_demand.regions.<region>.<instance type>` USD/hour
  (the repo's `policies/prices/prices.json`).

Attribution (per sample: node cost = USD/hour × interval)
----------------------------------------------------------
- a pod owned by a team (namespace/pod label `tierwise.io/team`) → that team, by its GPU share;
- a shared model-server pod (team `shared`, label `tierwise.io/model`) → split across teams by their
  share of that model's tokens in the ledger over the report period; with no traffic at all, it is
  `shared_unused` (paid-for serving nobody used);
- GPUs on the node that no pod requested → `idle` (the waste GpuIdleWaste alerts on).

Totals: **spend** = Bedrock token cost (real money) + GPU cost. Tier-1 token cost in the ledger is
the router's amortised internal price — shown as *chargeback* next to the GPU cost it should recover,
never added to spend (that would count the GPUs twice).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NANO = 1_000_000_000
MIG_SLICES = 7  # A100/H100 compute slices: profile "Ng.xxgb" = N/7 of a GPU
SHARED = "shared"


class InputError(ValueError):
    """Bad input, with the file and line that caused it."""


@dataclass(frozen=True)
class PriceBook:
    on_demand: dict[tuple[str, str], float]  # (region, instance type) -> USD/hour
    source: str = ""

    def usd_per_hour(self, region: str, instance_type: str) -> float | None:
        return self.on_demand.get((region, instance_type))


def default_prices_path() -> Path | None:
    if os.environ.get("TIERWISE_REPORT_PRICES"):
        return Path(os.environ["TIERWISE_REPORT_PRICES"])
    from .environment import repo_root

    root = repo_root() or repo_root(Path.cwd())
    p = root / "policies" / "prices" / "prices.json" if root else None
    return p if p and p.exists() else None


def load_prices(path: Path | None) -> PriceBook:
    path = path or default_prices_path()
    if path is None:
        return PriceBook({}, "none (pass --prices, or record usd_per_hour in the samples)")
    try:
        d = json.loads(Path(path).read_text())
        regions = d["ec2_on_demand"]["regions"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a price book with ec2_on_demand.regions ({e})") from None
    book = {(r, t): float(p) for r, types in regions.items() for t, p in types.items()}
    return PriceBook(book, f"{path} (as of {d['ec2_on_demand'].get('as_of', '?')})")


def _ts(s: Any, where: str) -> dt.datetime:
    if not isinstance(s, str):
        raise InputError(f"{where}: ts must be an ISO 8601 string")
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: bad ts {s!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def read_ledger(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Intact entries and the number of corrupt/torn lines (same format as the router's ledger.py)."""
    entries, bad = [], 0
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    for line in data.split(b"\n"):
        if not line:
            continue
        crc, _, body = line.partition(b" ")
        try:
            if len(crc) == 8 and int(crc, 16) == zlib.crc32(body):
                entries.append(json.loads(body))
                continue
        except ValueError:
            pass
        bad += 1
    return entries, bad


def read_usage(path: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise InputError(f"{where}: not JSON ({e})") from None
        if rec.get("schema") != "gpu-usage/v1":
            raise InputError(f"{where}: schema must be 'gpu-usage/v1', got {rec.get('schema')!r}")
        for k in ("ts", "interval_s", "node", "instance_type", "region", "node_gpus", "pods"):
            if k not in rec:
                raise InputError(f"{where}: missing {k!r}")
        out.append((where, rec))
    return out


def build_report(ledgers: Iterable[Path], usage_files: Iterable[Path], prices: PriceBook,
                 since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    # ---- tokens
    teams: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    models: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tokens_by_model_team: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # timeline buckets
    hourly = until - since <= dt.timedelta(hours=48)

    def bucket(t: dt.datetime) -> str:
        t = t.astimezone(dt.UTC)
        return t.strftime("%Y-%m-%dT%H:00Z") if hourly else t.date().isoformat()
    n_entries = n_bad = 0
    for lp in ledgers:
        entries, bad = read_ledger(Path(lp))
        n_bad += bad
        for e in entries:
            t = _ts(e.get("ts"), str(lp))
            if not since <= t < until:
                continue
            n_entries += 1
            usd = e["cost_nano_usd"] / NANO
            toks = e["prompt_tokens"] + e["completion_tokens"]
            tm, md = teams[e["team"]], models[e["model"]]
            key = "bedrock_usd" if int(e["tier"]) == 2 else "tier1_chargeback_usd"
            tm[key] += usd
            tm["calls"] += 1
            tm["prompt_tokens"] += e["prompt_tokens"]
            tm["completion_tokens"] += e["completion_tokens"]
            md["tier"] = int(e["tier"])
            md["calls"] += 1
            md["tokens"] += toks
            md["token_usd"] += usd
            tokens_by_model_team[e["model"]][e["team"]] += toks
            if key == "bedrock_usd":
                days[bucket(t)]["bedrock_usd"] += usd

    # ---- GPUs
    idle = {"gpu_hours": 0.0, "gpu_usd": 0.0}
    shared_unused: dict[str, float] = defaultdict(float)
    notes: set[str] = set()
    n_samples = 0
    for uf in usage_files:
        for where, rec in read_usage(Path(uf)):
            t = _ts(rec["ts"], where)
            if not since <= t < until:
                continue
            n_samples += 1
            hours = float(rec["interval_s"]) / 3600
            rate = rec.get("usd_per_hour")
            if rate is None:
                rate = prices.usd_per_hour(rec["region"], rec["instance_type"])
                if rate is None:
                    raise InputError(f"{where}: no price for {rec['instance_type']} in {rec['region']} "
                                     f"(price book: {prices.source}); record usd_per_hour or extend the book")
                if rec.get("capacity_type") == "spot":
                    notes.add("spot nodes without usd_per_hour are priced at on-demand (an upper bound)")
            node_gpus = float(rec["node_gpus"])
            if node_gpus <= 0:
                raise InputError(f"{where}: node_gpus must be > 0")
            per_gpu_usd = float(rate) * hours / node_gpus
            used = 0.0
            day = days[bucket(t)]
            for p in rec["pods"]:
                g = float(p["gpus"])
                used += g
                usd, gh = g * per_gpu_usd, g * hours
                team, model = p.get("team") or SHARED, p.get("model")
                if model:
                    models[model]["gpu_hours"] += gh
                    models[model]["gpu_usd"] += usd
                if team != SHARED:
                    teams[team]["gpu_usd"] += usd
                    teams[team]["gpu_hours"] += gh
                    day["gpu_usd"] += usd
                elif model:
                    shared_unused[model] += usd  # apportioned after all samples are read
                    day["gpu_usd"] += usd
                else:
                    raise InputError(f"{where}: pod {p.get('pod')!r} is shared but names no model")
            if used > node_gpus + 1e-9:
                raise InputError(f"{where}: pods request {used} GPUs on a {node_gpus:g}-GPU node")
            idle["gpu_hours"] += (node_gpus - used) * hours
            idle["gpu_usd"] += (node_gpus - used) * per_gpu_usd
            day["idle_usd"] += (node_gpus - used) * per_gpu_usd

    # ---- shared model servers → teams by token share of that model
    unused_total = 0.0
    for model, usd in shared_unused.items():
        share = tokens_by_model_team.get(model)
        total = sum(share.values()) if share else 0
        if not total:
            unused_total += usd
            continue
        gh = models[model]["gpu_hours"] * usd / models[model]["gpu_usd"] if models[model]["gpu_usd"] else 0
        for team, toks in share.items():
            teams[team]["gpu_usd"] += usd * toks / total
            teams[team]["gpu_hours"] += gh * toks / total

    team_rows = []
    for name in sorted(teams):
        t = teams[name]
        row = {"team": name, "calls": int(t["calls"]), "prompt_tokens": int(t["prompt_tokens"]),
               "completion_tokens": int(t["completion_tokens"]),
               "bedrock_usd": t["bedrock_usd"], "tier1_chargeback_usd": t["tier1_chargeback_usd"],
               "token_usd": t["bedrock_usd"] + t["tier1_chargeback_usd"],
               "gpu_hours": t["gpu_hours"], "gpu_usd": t["gpu_usd"], "spend_usd": t["bedrock_usd"] + t["gpu_usd"]}
        team_rows.append(row)
    model_rows = [{"model": m, "tier": int(v.get("tier", 1)), "calls": int(v["calls"]), "tokens": int(v["tokens"]),
                   "token_usd": v["token_usd"], "gpu_hours": v["gpu_hours"], "gpu_usd": v["gpu_usd"]}
                  for m, v in sorted(models.items())]
    bedrock = sum(r["bedrock_usd"] for r in team_rows)
    gpu_alloc = sum(r["gpu_usd"] for r in team_rows)
    totals = {"bedrock_usd": bedrock, "gpu_allocated_usd": gpu_alloc, "gpu_idle_usd": idle["gpu_usd"],
              "gpu_shared_unused_usd": unused_total,
              "gpu_usd": gpu_alloc + idle["gpu_usd"] + unused_total,
              "tier1_chargeback_usd": sum(r["tier1_chargeback_usd"] for r in team_rows)}
    totals["spend_usd"] = totals["bedrock_usd"] + totals["gpu_usd"]
    totals["chargeback_recovery_ratio"] = (totals["tier1_chargeback_usd"] / totals["gpu_usd"]) if totals["gpu_usd"] else None
    return {
        "schema": "tierwise-cost-report/v1", "currency": "USD",
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "teams": team_rows, "models": model_rows,
        "idle": idle, "shared_unused_usd": unused_total, "totals": totals,
        "timeline_granularity": "hour" if hourly else "day",
        "timeline": [{"bucket": d, "bedrock_usd": v["bedrock_usd"], "gpu_usd": v["gpu_usd"], "idle_usd": v["idle_usd"]}
                     for d, v in sorted(days.items())],
        "inputs": {"ledger_entries": n_entries, "ledger_skipped_corrupt_lines": n_bad, "gpu_samples": n_samples,
                   "prices": prices.source, "notes": sorted(notes)},
    }


# ------------------------------------------------------------------------------------ rendering
def _usd(x: float) -> str:
    return f"${x:,.2f}"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


def render_text(report: dict[str, Any]) -> str:
    p, tot = report["period"], report["totals"]
    lines = [f"tierwise costs  {p['since']} → {p['until']}", ""]
    hdr = f"{'team':<16}{'spend':>12}{'GPU':>12}{'GPU-h':>9}{'Bedrock':>11}{'T1 chargeback':>15}{'calls':>9}{'tokens':>13}"
    lines += [hdr, "-" * len(hdr)]
    for t in sorted(report["teams"], key=lambda r: -r["spend_usd"]):
        lines.append(f"{t['team']:<16}{_usd(t['spend_usd']):>12}{_usd(t['gpu_usd']):>12}{t['gpu_hours']:>9.1f}"
                     f"{_usd(t['bedrock_usd']):>11}{_usd(t['tier1_chargeback_usd']):>15}{t['calls']:>9,}"
                     f"{t['prompt_tokens'] + t['completion_tokens']:>13,}")
    lines.append(f"{'(idle GPUs)':<16}{_usd(tot['gpu_idle_usd']):>12}{_usd(tot['gpu_idle_usd']):>12}"
                 f"{report['idle']['gpu_hours']:>9.1f}")
    if tot["gpu_shared_unused_usd"]:
        lines.append(f"{'(unused shared)':<16}{_usd(tot['gpu_shared_unused_usd']):>12}{_usd(tot['gpu_shared_unused_usd']):>12}")
    lines += ["-" * len(hdr),
              f"{'total':<16}{_usd(tot['spend_usd']):>12}{_usd(tot['gpu_usd']):>12}{'':>9}{_usd(tot['bedrock_usd']):>11}"
              f"{_usd(tot['tier1_chargeback_usd']):>15}", ""]
    if tot["chargeback_recovery_ratio"] is not None:
        lines.append(f"Tier-1 chargeback recovers {tot['chargeback_recovery_ratio']:.1%} of the GPU bill; "
                     f"idle GPUs are {tot['gpu_idle_usd'] / tot['gpu_usd']:.0%} of it.")
    lines += ["", f"{'model':<44}{'tier':>5}{'calls':>9}{'tokens':>13}{'token cost':>12}{'GPU-h':>9}{'GPU':>12}"]
    for m in report["models"]:
        lines.append(f"{m['model']:<44}{m['tier']:>5}{m['calls']:>9,}{m['tokens']:>13,}{_usd(m['token_usd']):>12}"
                     f"{m['gpu_hours']:>9.1f}{_usd(m['gpu_usd']):>12}")
    i = report["inputs"]
    lines += ["", f"inputs: {i['ledger_entries']} ledger entries ({i['ledger_skipped_corrupt_lines']} corrupt lines "
                  f"skipped), {i['gpu_samples']} GPU samples; prices: {i['prices']}"]
    lines += [f"note: {n}" for n in i["notes"]]
    return "\n".join(lines) + "\n"


COLORS = {"gpu": "#3b6fb6", "bedrock": "#e08a2c", "idle": "#b9b9b9", "unused": "#d9d2c3", "chargeback": "#1b1b1b"}


def chart_png(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teams = sorted(report["teams"], key=lambda r: r["spend_usd"])
    tot = report["totals"]
    names = [t["team"] for t in teams] + ["idle GPUs"] + (["unused shared"] if tot["gpu_shared_unused_usd"] else [])
    gpu = [t["gpu_usd"] for t in teams] + [0.0] * (len(names) - len(teams))
    bed = [t["bedrock_usd"] for t in teams] + [0.0] * (len(names) - len(teams))
    waste = [0.0] * len(teams) + [tot["gpu_idle_usd"]] + ([tot["gpu_shared_unused_usd"]] if len(names) > len(teams) + 1 else [])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.15, 1]})
    y = range(len(names))
    ax.barh(y, gpu, color=COLORS["gpu"], label="GPU infrastructure (allocated)")
    ax.barh(y, bed, left=gpu, color=COLORS["bedrock"], label="Bedrock tokens (Tier 2)")
    ax.barh(y, waste, color=COLORS["idle"], label="GPU paid for, unused", hatch="//", edgecolor="#888")
    cb = [t["tier1_chargeback_usd"] for t in teams]
    ax.scatter(cb, range(len(teams)), marker="|", s=400, color=COLORS["chargeback"], zorder=3,
               label="Tier-1 token chargeback")
    xmax = max([g + b + w for g, b, w in zip(gpu, bed, waste, strict=True)] + cb + [1e-9])
    for i, (g, b, w) in enumerate(zip(gpu, bed, waste, strict=True)):
        ax.text(g + b + w + xmax * 0.01, i, _usd(g + b + w), va="center", fontsize=9)
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, xmax * 1.22)
    ax.set_xlabel("USD")
    ax.set_title(f"Spend by team — total {_usd(tot['spend_usd'])}", loc="left", fontsize=11)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    daily = report["timeline"]
    hourly = report["timeline_granularity"] == "hour"
    if daily:
        labels = [d["bucket"][11:13] if hourly else d["bucket"][5:] for d in daily]
        g = [d["gpu_usd"] for d in daily]
        idl = [d["idle_usd"] for d in daily]
        b = [d["bedrock_usd"] for d in daily]
        x = range(len(daily))
        ax2.bar(x, g, color=COLORS["gpu"], label="GPU allocated")
        ax2.bar(x, idl, bottom=g, color=COLORS["idle"], hatch="//", edgecolor="#888", label="GPU idle")
        ax2.bar(x, b, bottom=[a + c for a, c in zip(g, idl, strict=True)], color=COLORS["bedrock"], label="Bedrock")
        step = max(1, len(labels) // 12)
        ax2.set_xticks(list(x)[::step], labels[::step])
        if hourly:
            ax2.set_xlabel("hour (UTC)")
        ax2.legend(fontsize=8, frameon=False, loc="upper left")
    ax2.set_title(("Hourly" if hourly else "Daily") + " spend (UTC)", loc="left", fontsize=11)
    ax2.set_ylabel("USD")
    ax2.spines[["top", "right"]].set_visible(False)
    p = report["period"]
    fig.suptitle(f"tierwise dual cost report  {p['since'][:16]} → {p['until'][:16]} UTC", x=0.01, ha="left",
                 fontsize=12, fontweight="bold")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def write_chart_png(report: dict[str, Any], path: Path) -> None:
    path.write_bytes(chart_png(report))


def render_html(report: dict[str, Any]) -> str:
    """Self-contained page: the chart inline (base64 PNG) and the tables."""
    img = base64.b64encode(chart_png(report)).decode()
    e = html.escape

    def table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
        head = "".join(f"<th>{e(label)}</th>" for _, label in cols)
        body = ""
        for r in rows:
            cells = []
            for key, _ in cols:
                v = r[key]
                cells.append(f"<td>{_usd(v) if key.endswith('_usd') else (f'{v:,.1f}' if isinstance(v, float) else e(str(v)) if isinstance(v, str) else f'{v:,}')}</td>")
            body += "<tr>" + "".join(cells) + "</tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    tot = report["totals"]
    p = report["period"]
    team_cols = [("team", "team"), ("spend_usd", "spend"), ("gpu_usd", "GPU"), ("gpu_hours", "GPU-hours"),
                 ("bedrock_usd", "Bedrock"), ("tier1_chargeback_usd", "Tier-1 chargeback"), ("calls", "calls")]
    model_cols = [("model", "model"), ("tier", "tier"), ("calls", "calls"), ("tokens", "tokens"),
                  ("token_usd", "token cost"), ("gpu_hours", "GPU-hours"), ("gpu_usd", "GPU")]
    summary = (f"Total spend <b>{_usd(tot['spend_usd'])}</b>: GPUs {_usd(tot['gpu_usd'])} "
               f"(idle {_usd(tot['gpu_idle_usd'])}), Bedrock {_usd(tot['bedrock_usd'])}.")
    if tot["chargeback_recovery_ratio"] is not None:
        summary += f" Tier-1 chargeback recovers {tot['chargeback_recovery_ratio']:.1%} of the GPU bill."
    notes = "".join(f"<li>{e(n)}</li>" for n in report["inputs"]["notes"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tierwise costs {e(p['since'][:10])} – {e(p['until'][:10])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>tierwise dual cost report</h1><p>{e(p['since'])} → {e(p['until'])}</p><p>{summary}</p>
<img alt="spend by team and day" src="data:image/png;base64,{img}">
<h2>Teams</h2>{table(report['teams'], team_cols)}
<h2>Models</h2>{table(report['models'], model_cols)}
<p>Inputs: {report['inputs']['ledger_entries']} ledger entries ({report['inputs']['ledger_skipped_corrupt_lines']}
corrupt lines skipped), {report['inputs']['gpu_samples']} GPU samples; prices: {e(report['inputs']['prices'])}.</p>
<ul>{notes}</ul></body></html>
"""


# ------------------------------------------------------------------------------------ recording
def _gpus_requested(pod: dict[str, Any]) -> float:
    total = 0.0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources", {})
        req = {**res.get("limits", {}), **res.get("requests", {})}
        for k, v in req.items():
            if k == "nvidia.com/gpu":
                total += float(v)
            elif k.startswith("nvidia.com/mig-"):
                prof = k.removeprefix("nvidia.com/mig-")
                total += float(v) * int(prof.split("g.")[0]) / MIG_SLICES
    return total


def snapshot_from_kube(nodes: dict[str, Any], pods: dict[str, Any], namespaces: dict[str, Any],
                       ts: dt.datetime, interval_s: int) -> list[dict[str, Any]]:
    """gpu-usage/v1 records from `kubectl get nodes|pods -A|namespaces -o json`."""
    ns_team = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get("tierwise.io/team")
               for n in namespaces.get("items", [])}
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pods.get("items", []):
        if p.get("status", {}).get("phase") != "Running" or not p.get("spec", {}).get("nodeName"):
            continue
        g = _gpus_requested(p)
        if g <= 0:
            continue
        md = p["metadata"]
        labels = md.get("labels") or {}
        team = labels.get("tierwise.io/team") or ns_team.get(md["namespace"]) or md["namespace"]
        rec = {"namespace": md["namespace"], "pod": md["name"], "team": team, "gpus": g}
        if labels.get("tierwise.io/model"):
            rec["model"] = labels["tierwise.io/model"]
        by_node[p["spec"]["nodeName"]].append(rec)
    out = []
    for n in nodes.get("items", []):
        cap = n.get("status", {}).get("capacity", {})
        whole = float(cap.get("nvidia.com/gpu", 0))
        mig = sum(float(v) * int(k.removeprefix("nvidia.com/mig-").split("g.")[0]) / MIG_SLICES
                  for k, v in cap.items() if k.startswith("nvidia.com/mig-"))
        gpus = whole + mig
        if gpus <= 0:
            continue
        labels = n["metadata"].get("labels") or {}
        out.append({"schema": "gpu-usage/v1", "ts": ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                    "interval_s": interval_s, "node": n["metadata"]["name"],
                    "instance_type": labels.get("node.kubernetes.io/instance-type", "unknown"),
                    "capacity_type": labels.get("karpenter.sh/capacity-type", "on-demand"),
                    "region": labels.get("topology.kubernetes.io/region", ""), "node_gpus": gpus,
                    "pods": sorted(by_node.get(n["metadata"]["name"], []), key=lambda r: r["pod"])})
    return out
