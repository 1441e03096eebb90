"""`BedrockInvokePolicy`: the only IAM policy that may invoke Bedrock, scoped to the allowed models.

The resources are what Bedrock needs for each allowed id from this region (tierwise.config.bedrock_catalog): the
foundation-model ARN for an on-demand model; for an inference profile, the profile ARN and the foundation-model ARN
in every region the profile routes to."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.iam_policy import IamPolicy

from ..iam import Statement, policy_document

INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


@dataclass(frozen=True)
class BedrockInvokePolicyProps:
    name: str
    #: Profile and foundation-model ARNs (Environment.bedrock_invoke_arns).
    resource_arns: list[str]


class BedrockInvokePolicy(Construct):
    """Creates one `aws_iam_policy` allowing InvokeModel/InvokeModelWithResponseStream (which also
    authorise Converse/ConverseStream) on exactly the listed ARNs."""

    def __init__(self, scope: Construct, id: str, *, props: BedrockInvokePolicyProps) -> None:
        super().__init__(scope, id)
        if not props.resource_arns:
            raise ValueError("BedrockInvokePolicy needs at least one model ARN (bedrock.allowed_model_ids)")
        if any("*" in a for a in props.resource_arns):
            raise ValueError(f"BedrockInvokePolicy: wildcard ARNs are not allowed: {props.resource_arns}")
        self.statement = Statement(INVOKE_ACTIONS, sorted(props.resource_arns), sid="InvokeAllowedModelsOnly")
        self.policy = IamPolicy(self, "policy", name=props.name, description="Invoke only the environment's allowed Bedrock models",
                                policy=policy_document([self.statement]))

    @property
    def policy_arn(self) -> str:
        return self.policy.arn
