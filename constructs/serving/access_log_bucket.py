"""`AccessLogBucket`: the dedicated bucket that receives S3 server access logs of the data buckets."""

from __future__ import annotations

import json
from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import S3BucketLifecycleConfiguration
from cdktn_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import S3BucketServerSideEncryptionConfigurationA
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA

from ..jsii_structs import struct_list

LOGGING_SERVICE = "logging.s3.amazonaws.com"


class BucketRefs:
    """`bucket_name` and `bucket_arn` of a bucket construct whose `aws_s3_bucket` is `self.bucket`
    (this one and `DataBucket`)."""

    bucket: S3Bucket

    @property
    def bucket_name(self) -> str:
        return self.bucket.bucket

    @property
    def bucket_arn(self) -> str:
        return self.bucket.arn


@dataclass(frozen=True)
class AccessLogBucketProps:
    name: str
    #: Account whose buckets may deliver logs here (the `aws:SourceAccount` of the logging service).
    account_id: str
    #: Log objects are expired after this many days.
    retention_days: int = 365
    #: Keep the bucket on `terraform destroy` (and refuse to empty it).
    protect: bool = True


class AccessLogBucket(BucketRefs, Construct):
    """Creates `aws_s3_bucket`, `aws_s3_bucket_public_access_block` (all blocked), `aws_s3_bucket_ownership_controls`
    (BucketOwnerEnforced), `aws_s3_bucket_server_side_encryption_configuration` (SSE-S3: S3 server access logging
    cannot deliver to a bucket whose default encryption is SSE-KMS), `aws_s3_bucket_versioning`,
    `aws_s3_bucket_lifecycle_configuration` (expire logs after `retention_days`, noncurrent versions after 30 days,
    abort incomplete uploads after 7) and `aws_s3_bucket_policy` (deny non-TLS; only the S3 logging service of
    this account may put objects).

    A log bucket does not log itself, replicate, or emit events: those findings are suppressed with reasons
    in `policies/suppressions.yaml`."""

    def __init__(self, scope: Construct, id: str, *, props: AccessLogBucketProps) -> None:
        super().__init__(scope, id)
        p = props
        if p.retention_days < 1:
            raise ValueError(f"AccessLogBucket {p.name}: retention_days must be >= 1, got {p.retention_days}")
        self.bucket = S3Bucket(self, "bucket", bucket=p.name, force_destroy=not p.protect, lifecycle={"prevent_destroy": p.protect})
        S3BucketPublicAccessBlock(self, "public-access-block", bucket=self.bucket.id, block_public_acls=True,
                                  block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketOwnershipControls(self, "ownership", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"})
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=self.bucket.id, rule=struct_list([{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}]))
        S3BucketVersioningA(self, "versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"})
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=self.bucket.id, rule=struct_list([
            {"id": "expire-logs", "status": "Enabled", "filter": [{"prefix": ""}],
             "expiration": [{"days": p.retention_days}],
             "noncurrent_version_expiration": [{"noncurrent_days": 30}],
             "abort_incomplete_multipart_upload": [{"days_after_initiation": 7}]}]))
        S3BucketPolicy(self, "policy", bucket=self.bucket.id, policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": LOGGING_SERVICE},
             "Action": "s3:PutObject", "Resource": f"{self.bucket.arn}/*",
             "Condition": {"StringEquals": {"aws:SourceAccount": p.account_id}}}]}, sort_keys=True))
