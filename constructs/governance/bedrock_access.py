"""`BedrockInvokePolicy`: the only IAM policy that may invoke Bedrock, scoped to the allowed models."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.iam_policy import IamPolicy

from ..iam import Statement, policy_document

INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def foundation_model_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


@dataclass(frozen=True)
class BedrockInvokePolicyProps:
    name: str
    region: str
    model_ids: list[str]


class BedrockInvokePolicy(Construct):
    """Creates one `aws_iam_policy` allowing InvokeModel/InvokeModelWithResponseStream (which also
    authorise Converse/ConverseStream) on exactly the listed foundation-model ARNs."""

    def __init__(self, scope: Construct, id: str, *, props: BedrockInvokePolicyProps) -> None:
        super().__init__(scope, id)
        if not props.model_ids:
            raise ValueError("BedrockInvokePolicy needs at least one model id (bedrock.allowed_model_ids)")
        self.statement = Statement(INVOKE_ACTIONS, [foundation_model_arn(props.region, m) for m in sorted(props.model_ids)],
                                   sid="InvokeAllowedModelsOnly")
        self.policy = IamPolicy(self, "policy", name=props.name, description="Invoke only the environment's allowed Bedrock models",
                                policy=policy_document([self.statement]))

    @property
    def policy_arn(self) -> str:
        return self.policy.arn
