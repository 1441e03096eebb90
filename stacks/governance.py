"""governance: money and model access — an AWS Budget per team, the one IAM policy that may invoke
Bedrock (allowed models only), Bedrock model-invocation logging, and an optional Bedrock Guardrail."""

from __future__ import annotations

from constructs import Construct

from tierwise.config.slices import GovernanceSlice
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.governance.bedrock_access import BedrockInvokePolicy, BedrockInvokePolicyProps
from tierwise.constructs.governance.bedrock_guardrail import BedrockGuardrail, BedrockGuardrailProps
from tierwise.constructs.governance.bedrock_invocation_logging import BedrockInvocationLogging, BedrockInvocationLoggingProps
from tierwise.constructs.governance.team_budget import TeamBudget, TeamBudgetProps

from .base import SHARED_TEAM, TierwiseStack, default_tags


class GovernanceStack(TierwiseStack):
    layer = "governance"

    def __init__(self, scope: Construct, env: GovernanceSlice) -> None:
        super().__init__(scope, env)
        name = env.prefix
        key = EncryptionKey(self, "governance-key", props=EncryptionKeyProps(
            alias=f"{name}/governance", account_id=env.account_id, region=env.region,
            description="budget alert topics and Bedrock invocation logs", protect=env.protect_stateful,
            service_principals=["budgets.amazonaws.com", f"logs.{env.region}.amazonaws.com"]))
        budgets = Construct(self, "budgets")
        for team in env.teams:
            TeamBudget(budgets, team.name, props=TeamBudgetProps(
                name=f"{name}-{team.name}", team=team.name, cost_center=team.cost_center, account_id=env.account_id,
                monthly_limit_usd=team.monthly_budget_usd, topic_key=key, alert_emails=team.budget_alert_emails))
        # The platform budget: account-wide, what TW-COST-005 bounds the NodePool limits' worst case against.
        TeamBudget(self, "platform-budget", props=TeamBudgetProps(
            name=f"{name}-platform", team=SHARED_TEAM, cost_center=default_tags(env)["cost-center"], account_id=env.account_id,
            monthly_limit_usd=env.platform.monthly_budget_usd, topic_key=key,
            alert_emails=env.platform.budget_alert_emails, platform=True))
        self.bedrock_invoke = None
        if env.bedrock.allowed_model_ids:
            self.bedrock_invoke = BedrockInvokePolicy(self, "bedrock-invoke", props=BedrockInvokePolicyProps(
                name=f"{name}-bedrock-invoke", resource_arns=list(env.bedrock_invoke_arns)))
        if env.bedrock.invocation_logging:
            BedrockInvocationLogging(self, "bedrock-logging", props=BedrockInvocationLoggingProps(
                name=name, account_id=env.account_id, region=env.region, retention_days=env.bedrock.log_retention_days,
                log_key=key))
        g = env.bedrock.guardrail
        if g.enabled:
            BedrockGuardrail(self, "bedrock-guardrail", props=BedrockGuardrailProps(
                name=f"{name}-tier2", blocked_message=g.blocked_message, pii_entities_to_anonymize=g.pii_entities_to_anonymize))
