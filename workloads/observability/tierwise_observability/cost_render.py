"""Rendering of a `tierwise-cost-report/v1` (built by costs.py): JSON, text table, PNG chart, HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

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
    lines += ["", f"inputs: {i['ledger_entries']} ledger entries from {i['ledger_source'] or 'the ledger'} "
                  f"({i['ledger_skipped_corrupt_lines']} corrupt lines skipped, {i['ledger_duplicates_dropped']} "
                  f"duplicates counted once), {i['gpu_samples']} GPU samples; prices: {i['prices']}"]
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
