"""TW-IAM-003: Bedrock InvokeModel*/Converse* only on model ARNs in the environment's allowlist."""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable

from tierwise.config.bedrock_catalog import split_profile
from tierwise.policies.checks.iam.iam_common import all_policy_documents
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, as_list, is_ref, policy_statements, result

INVOKE = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:Converse", "bedrock:ConverseStream")
MODEL_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:[a-z0-9-*]*:(\d{12})?:(foundation-model|inference-profile)/(.+)$")
#: The governance stack's allowlist policy (constructs/governance BedrockInvokePolicy) carries this Sid.
ALLOWLIST_SID = "InvokeAllowedModelsOnly"


def grants_invoke(actions: list[str]) -> list[str]:
    return [a for a in actions if any(fnmatch.fnmatchcase(i.lower(), a.lower()) for i in INVOKE)]


def model_id(arn: str) -> str | None:
    m = MODEL_ARN.match(arn)
    if not m:
        return None
    return split_profile(m.group(3))[1]  # us.anthropic.claude-... (a profile) -> anthropic.claude-...


def allowlist(index: Index) -> tuple[set[str] | None, str]:
    """The environment's allowlist: tierwise.json `bedrock.allowed_model_ids` (preferred), else the model ids
    of the governance allowlist policy (Sid InvokeAllowedModelsOnly)."""
    b = index.meta.get("bedrock")
    if isinstance(b, dict) and isinstance(b.get("allowed_model_ids"), list):
        # profile ids allow their foundation model (the profile routes to it), compared without the geo prefix
        return {split_profile(str(x))[1] for x in b["allowed_model_ids"]}, "tierwise.json bedrock.allowed_model_ids"
    for pol in index.of_type("aws_iam_policy"):
        stmts, _ = policy_statements(pol.body.get("policy"))
        for s in stmts or []:
            if s.get("Sid") == ALLOWLIST_SID:
                ids = {model_id(str(r)) for r in as_list(s.get("Resource"))}
                if None not in ids and not any("*" in i for i in ids):
                    return set(ids), f"{pol.address} (Sid {ALLOWLIST_SID})"
    return None, ""


class BedrockAllowlist:
    meta = CheckMeta(
        id="TW-IAM-003",
        title="Bedrock InvokeModel and Converse are allowed only on the environment's allowlisted models",
        severity="HIGH",
        categories=("IAM", "LLM"),
        resource_types=("aws_iam_policy", "aws_iam_role_policy", "aws_iam_role"),
        rationale="A wildcard model ARN lets any workload call any model, including ones never reviewed for data "
                  "handling or priced into a team's budget.",
        fix="Invoke only through the governance `bedrock-invoke` policy; add a model to `bedrock.allowed_model_ids` in "
            "environments/<env>.yaml instead of widening a policy.",
        protects="model allowlist and spend: which foundation models can be invoked",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        allowed, source = allowlist(index)
        for d in all_policy_documents(index):
            stmts, why = policy_statements(d.document)
            if stmts is None:
                yield result(m, UNKNOWN, d.owner, f"{d.owner.address} ({d.label}): {why}")
                continue
            relevant, bad = False, 0
            for i, s in enumerate(stmts):
                if s.get("Effect", "Allow") != "Allow":
                    continue
                sid = s.get("Sid") or f"#{i}"
                acts = grants_invoke([str(a) for a in as_list(s.get("Action"))]) if "NotAction" not in s else ["NotAction"]
                if not acts:
                    continue
                relevant = True
                if "NotResource" in s:
                    bad += 1
                    yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: {acts} with NotResource reaches "
                                                   "every model; list model ARNs", finding=f"{sid}::NotResource")
                    continue
                for res in [str(r) for r in as_list(s.get("Resource"))]:
                    bad += 1  # decremented below when the resource is an allowlisted model
                    if is_ref(res):
                        yield result(m, UNKNOWN, d.owner, f"{d.owner.address} statement {sid}: resource {res!r} is a "
                                                          "Terraform reference; cannot prove it is an allowlisted model", finding=f"{sid}::{res}")
                        continue
                    mid = model_id(res)
                    if mid is None or "*" in mid or "?" in mid:
                        yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: {acts[0]} on {res!r}, not a "
                                                       "single model ARN; list allowlisted model ARNs", finding=f"{sid}::{res}")
                    elif allowed is None:
                        yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: {acts[0]} on {mid!r} but the "
                                                       "synth output carries no Bedrock allowlist; set bedrock.allowed_model_ids",
                                     finding=f"{sid}::{res}")
                    elif mid not in allowed:
                        yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: model {mid!r} is not in the "
                                                       f"allowlist {sorted(allowed)} ({source}); add it to "
                                                       "bedrock.allowed_model_ids or remove it", finding=f"{sid}::{res}")
                    else:
                        bad -= 1
            if relevant and not bad:
                yield result(m, PASS, d.owner, f"{d.owner.address}: Bedrock invoke limited to allowlisted models ({source})")
