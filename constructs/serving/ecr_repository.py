"""`EcrRepository`: a private image repository for one platform service."""

from __future__ import annotations

import json
from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktn_provider_aws.ecr_repository import EcrRepository as AwsEcrRepository

from ..jsii_structs import struct_list
from .data_bucket import IKmsKey


@dataclass(frozen=True)
class EcrRepositoryProps:
    name: str
    #: Untagged images are expired after this many days.
    untagged_expiry_days: int = 14
    #: Tagged images kept (newest first).
    keep_tagged: int = 50
    protect: bool = True


class EcrRepository(Construct):
    """Creates `aws_ecr_repository` (scan on push, immutable tags, KMS encryption) and its `aws_ecr_lifecycle_policy`."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: EcrRepositoryProps) -> None:
        super().__init__(scope, id)
        p = props
        self.repository = AwsEcrRepository(
            self, "repository", name=p.name, image_tag_mutability="IMMUTABLE", force_delete=not p.protect,
            image_scanning_configuration={"scan_on_push": True},
            encryption_configuration=struct_list([{"encryption_type": "KMS", "kms_key": key.key_arn}]),
            lifecycle={"prevent_destroy": p.protect})
        EcrLifecyclePolicy(self, "lifecycle", repository=self.repository.name, policy=json.dumps({"rules": [
            {"rulePriority": 1, "description": "expire untagged images",
             "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                           "countNumber": p.untagged_expiry_days}, "action": {"type": "expire"}},
            {"rulePriority": 2, "description": "keep the newest tagged images",
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": p.keep_tagged},
             "action": {"type": "expire"}}]}, sort_keys=True))

    def image(self, tag: str) -> str:
        return f"{self.repository.repository_url}:{tag}"

    @property
    def repository_url(self) -> str:
        return self.repository.repository_url
