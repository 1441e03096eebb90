"""`BedrockGuardrail`: an optional Bedrock Guardrail the router attaches to Tier-2 calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct
from ..jsii_structs import struct_list
from cdktn_provider_aws.bedrock_guardrail import BedrockGuardrail as AwsBedrockGuardrail


@dataclass(frozen=True)
class BedrockGuardrailProps:
    name: str
    blocked_message: str
    pii_entities_to_anonymize: list[str] = field(default_factory=list)


class BedrockGuardrail(Construct):
    """Creates one `aws_bedrock_guardrail`: prompt-attack filter on input at HIGH, PII anonymised."""

    def __init__(self, scope: Construct, id: str, *, props: BedrockGuardrailProps) -> None:
        super().__init__(scope, id)
        self.guardrail = AwsBedrockGuardrail(
            self, "guardrail", name=props.name, blocked_input_messaging=props.blocked_message,
            blocked_outputs_messaging=props.blocked_message,
            content_policy_config=struct_list([{"filters_config": [{"type": "PROMPT_ATTACK", "input_strength": "HIGH", "output_strength": "NONE"}]}]),
            sensitive_information_policy_config=struct_list([{"pii_entities_config": [
                {"type": e, "action": "ANONYMIZE"} for e in props.pii_entities_to_anonymize]}]) if props.pii_entities_to_anonymize else None,
        )
