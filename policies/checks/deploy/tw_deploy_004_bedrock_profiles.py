"""TW-DEPLOY-004: every allowed Bedrock id can be invoked from the environment's region as configured (on demand, or
through the inference profile Bedrock requires), and the invoke policies allow every ARN that call needs."""

from __future__ import annotations

from typing import Iterable

from tierwise.config.bedrock_catalog import catalog_version, resolve
from tierwise.policies.checks.iam.tw_iam_003_bedrock_allowlist import ALLOWLIST_SID
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, as_list, policy_statements, result


class BedrockInvokable:
    meta = CheckMeta(
        id="TW-DEPLOY-004",
        title="Allowed Bedrock ids are invokable from the region and the invoke policy covers their profile routes",
        severity="HIGH",
        categories=("DEPLOY", "IAM", "LLM"),
        resource_types=("aws_iam_policy", "aws_iam_role_policy"),
        rationale="Recent Anthropic models on Bedrock are invoked only through inference profiles (us./global. ids); the "
                  "call is authorised on the profile ARN and on the foundation model in every region the profile routes "
                  "to. A bare model id, or a policy naming only the local foundation model, fails every Tier-2 call.",
        fix="Use the profile id the message names in bedrock.allowed_model_ids; the governance and router policies then "
            "list the profile and destination ARNs.",
        protects="Tier-2 fallback: Bedrock calls are authorised and routable",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        meta = index.meta if isinstance(index.meta, dict) else {}
        ids = [str(x) for x in as_list((meta.get("bedrock") or {}).get("allowed_model_ids"))]
        region, account = str(meta.get("region", "")), str(meta.get("account_id", ""))
        if not ids:
            return
        required: dict[str, list[str]] = {}
        for mid in ids:
            try:
                t = resolve(mid, region)
            except ValueError as e:
                yield result(m, FAIL, None, f"(synth) bedrock.allowed_model_ids {mid!r}: {e} "
                                            f"(bedrock-models {catalog_version()}); replace the id in the environment file",
                             address="(synth)", finding=f"Model::{mid}")
                continue
            required[mid] = t.resource_arns(account)
        for holder, stmt in _allowlist_statements(index):
            have = {str(a) for a in as_list(stmt.get("Resource"))}
            missing = [(mid, a) for mid, arns in required.items() for a in arns if a not in have]
            if missing:
                for mid, arn in missing:
                    yield result(m, FAIL, holder, f"{holder.address}: invoking {mid!r} from {region} needs {arn}, which "
                                                  f"statement {ALLOWLIST_SID} does not allow; list the profile's "
                                                  "destination ARNs (Environment.bedrock_invoke_arns)", finding=f"{mid}::{arn}")
            else:
                yield result(m, PASS, holder, f"{holder.address}: {len(required)} Bedrock ids with all "
                                              f"{sum(len(a) for a in required.values())} profile/model ARNs")


def _allowlist_statements(index: Index):
    for r in index.of_type("aws_iam_policy", "aws_iam_role_policy"):
        stmts, _ = policy_statements(r.body.get("policy"))
        for s in stmts or []:
            if s.get("Sid") == ALLOWLIST_SID:
                yield r, s
