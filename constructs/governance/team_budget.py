"""`TeamBudget`: a monthly AWS Budget per team, filtered by its cost-allocation tag, alerting to SNS; with
`platform=True` the same budget unfiltered, for the whole account (the environment's platform budget)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.budgets_budget import BudgetsBudget
from cdktn_provider_aws.sns_topic import SnsTopic
from cdktn_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktn_provider_aws.sns_topic_subscription import SnsTopicSubscription

from ..encryption_key import EncryptionKey
from ..jsii_structs import struct_list

COST_TAG = "cost-center"
#: Tag that marks the platform budget for the policy gate (TW-COST-005 reads it from cdktf.out).
SCOPE_TAG = "tierwise.io/budget-scope"


@dataclass(frozen=True)
class TeamBudgetProps:
    name: str
    team: str
    cost_center: str
    account_id: str
    monthly_limit_usd: float
    topic_key: EncryptionKey
    alert_emails: list[str] = field(default_factory=list)
    #: Percentages of the limit that notify: actual spend, then forecast.
    actual_thresholds_pct: tuple[int, ...] = (80, 100)
    forecast_thresholds_pct: tuple[int, ...] = (100,)
    #: The platform budget: no cost filter (every dollar of the account) and tagged `tierwise.io/budget-scope:
    #: platform`. Omitted: a team budget filtered on `user:cost-center$<cost_center>`.
    platform: bool = False


class TeamBudget(Construct):
    """Creates an encrypted `aws_sns_topic` with a policy that lets AWS Budgets publish, one email
    `aws_sns_topic_subscription` per address, and `aws_budgets_budget` (COST, MONTHLY) filtered by
    `user:cost-center$<cost center>` (unfiltered when `platform`) with one notification per threshold."""

    def __init__(self, scope: Construct, id: str, *, props: TeamBudgetProps) -> None:
        super().__init__(scope, id)
        tags = {"team": props.team, COST_TAG: props.cost_center, **({SCOPE_TAG: "platform"} if props.platform else {})}
        cost_filter = [] if props.platform else [{"name": "TagKeyValue", "values": [f"user:{COST_TAG}${props.cost_center}"]}]
        self.topic = SnsTopic(self, "alerts", name=f"{props.name}-budget-alerts", kms_master_key_id=props.topic_key.key_arn, tags=tags)
        SnsTopicPolicy(self, "alerts-policy", arn=self.topic.arn, policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "BudgetsPublish", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "SNS:Publish", "Resource": self.topic.arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": props.account_id}}}]}, sort_keys=True))
        for i, email in enumerate(props.alert_emails):
            SnsTopicSubscription(self, f"email-{i}", topic_arn=self.topic.arn, protocol="email", endpoint=email)
        notifications = [
            {"comparison_operator": "GREATER_THAN", "threshold": pct, "threshold_type": "PERCENTAGE",
             "notification_type": kind, "subscriber_sns_topic_arns": [self.topic.arn]}
            for kind, pcts in (("ACTUAL", props.actual_thresholds_pct), ("FORECASTED", props.forecast_thresholds_pct))
            for pct in pcts
        ]
        self.budget = BudgetsBudget(
            self, "budget", name=props.name, budget_type="COST", time_unit="MONTHLY",
            limit_amount=f"{props.monthly_limit_usd:.2f}", limit_unit="USD",
            cost_filter=struct_list(cost_filter) if cost_filter else None,
            notification=struct_list(notifications), tags=tags,
        )
