"""`DataBucket`: one private, KMS-encrypted, versioned and access-logged S3 bucket with grants scoped to key prefixes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from constructs import Construct
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import S3BucketLifecycleConfiguration
from cdktn_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktn_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktn_provider_aws.s3_bucket_object_lock_configuration import S3BucketObjectLockConfigurationA
from cdktn_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import S3BucketServerSideEncryptionConfigurationA
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA

from ..iam import Statement
from ..jsii_structs import struct_list
from .access_log_bucket import AccessLogBucket, AccessLogBucketProps, BucketRefs


class IKmsKey(Protocol):
    @property
    def key_arn(self) -> str: ...


class ILogBucket(Protocol):
    @property
    def bucket_name(self) -> str: ...


@dataclass(frozen=True)
class DataBucketProps:
    name: str
    #: Keep every object version, so an overwrite or delete can be undone. Off: one version per key.
    enable_versioning: bool = True
    #: Object Lock in COMPLIANCE mode with this default retention (implies versioning). Off when omitted.
    object_lock_days: int | None = None
    #: Expire noncurrent versions after this many days; kept forever when omitted.
    noncurrent_version_days: int | None = None
    #: Expire current versions this many days after creation (a delete marker; with versioning the data goes
    #: once `noncurrent_version_days` have also passed, and never before an object lock's retention ends).
    #: Kept forever when omitted.
    expiration_days: int | None = None
    #: Incomplete multipart uploads are aborted (and stop costing storage) after this many days.
    abort_incomplete_multipart_days: int = 7
    #: Send object events to EventBridge (default bus; free for S3 events). Off: no event notifications.
    enable_eventbridge: bool = True
    #: Keep the bucket on `terraform destroy` (and refuse to empty it).
    protect: bool = True


class DataBucket(BucketRefs, Construct):
    """Creates `aws_s3_bucket`, `aws_s3_bucket_public_access_block` (all blocked),
    `aws_s3_bucket_ownership_controls` (BucketOwnerEnforced), `aws_s3_bucket_server_side_encryption_configuration`
    (SSE-KMS with bucket keys), `aws_s3_bucket_policy` (deny non-TLS), `aws_s3_bucket_lifecycle_configuration`
    (abort incomplete multipart uploads; expire current and noncurrent versions when configured), `aws_s3_bucket_logging`
    (server access logs to `access_logs`, or to an `AccessLogBucket` `<name>-logs` created here when none is
    given), `aws_s3_bucket_notification` (EventBridge, unless disabled), and when configured
    `aws_s3_bucket_versioning` and `aws_s3_bucket_object_lock_configuration`.

    Not replicated to a second region: tierwise is single-region by design (the suppression of CKV_AWS_144
    in `policies/suppressions.yaml` says why)."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: DataBucketProps,
                 access_logs: ILogBucket | None = None) -> None:
        super().__init__(scope, id)
        p = props
        if p.object_lock_days is not None and p.object_lock_days < 1:
            raise ValueError(f"DataBucket {p.name}: object_lock_days must be >= 1, got {p.object_lock_days}")
        if p.noncurrent_version_days is not None and not (p.enable_versioning or p.object_lock_days):
            raise ValueError(f"DataBucket {p.name}: noncurrent_version_days needs versioning")
        if p.expiration_days is not None and p.expiration_days < (p.object_lock_days or 1):
            raise ValueError(f"DataBucket {p.name}: expiration_days must be >= 1 and >= object_lock_days "
                             f"({p.object_lock_days}), got {p.expiration_days}: an object cannot expire while it is locked")
        if p.abort_incomplete_multipart_days < 1:
            raise ValueError(f"DataBucket {p.name}: abort_incomplete_multipart_days must be >= 1, "
                             f"got {p.abort_incomplete_multipart_days}")
        self._key = key
        self.bucket = S3Bucket(self, "bucket", bucket=p.name, object_lock_enabled=p.object_lock_days is not None,
                               force_destroy=not p.protect, lifecycle={"prevent_destroy": p.protect})
        S3BucketPublicAccessBlock(self, "public-access-block", bucket=self.bucket.id, block_public_acls=True,
                                  block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketOwnershipControls(self, "ownership", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"})
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=self.bucket.id, rule=struct_list([{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.key_arn},
            "bucket_key_enabled": True}]))
        S3BucketPolicy(self, "policy", bucket=self.bucket.id, policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [self.bucket.arn, f"{self.bucket.arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
            sort_keys=True))
        versioned = p.enable_versioning or p.object_lock_days is not None
        if versioned:
            S3BucketVersioningA(self, "versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"})
        if p.object_lock_days is not None:
            S3BucketObjectLockConfigurationA(self, "object-lock", bucket=self.bucket.id, rule={
                "default_retention": {"mode": "COMPLIANCE", "days": p.object_lock_days}})
        rules = [{"id": "abort-incomplete-multipart", "status": "Enabled", "filter": [{"prefix": ""}],
                  "abort_incomplete_multipart_upload": [{"days_after_initiation": p.abort_incomplete_multipart_days}]}]
        if p.noncurrent_version_days is not None:
            rules.append({"id": "expire-noncurrent", "status": "Enabled", "filter": [{"prefix": ""}],
                          "noncurrent_version_expiration": [{"noncurrent_days": p.noncurrent_version_days}]})
        if p.expiration_days is not None:
            rules.append({"id": "expire-current", "status": "Enabled", "filter": [{"prefix": ""}],
                          "expiration": [{"days": p.expiration_days}]})
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=self.bucket.id, rule=struct_list(rules))
        if access_logs is None:
            caller = DataAwsCallerIdentity(self, "caller")
            access_logs = AccessLogBucket(self, "access-logs", props=AccessLogBucketProps(
                name=f"{p.name}-logs", account_id=caller.account_id, protect=p.protect))
        self.access_logs = access_logs
        S3BucketLoggingA(self, "logging", bucket=self.bucket.id, target_bucket=access_logs.bucket_name,
                         target_prefix=f"{p.name}/")
        if p.enable_eventbridge:
            S3BucketNotification(self, "notification", bucket=self.bucket.id, eventbridge=True)

    # -- grants: least-privilege statements for a WorkloadIdentity -------------------------------
    def grant_read(self, prefixes: list[str], *, sid: str, versions: bool = False) -> list[Statement]:
        """Read (and list) only the objects under `prefixes` (no trailing slash), and decrypt them.
        `sid` prefixes the statement ids, which must be unique within one policy."""
        if not prefixes:
            raise ValueError("grant_read needs at least one prefix (a whole-bucket read is never granted)")
        get = ["s3:GetObject"] + (["s3:GetObjectVersion"] if versions else [])
        return [
            Statement(get, [f"{self.bucket_arn}/{p}/*" for p in sorted(prefixes)], sid=f"{sid}Read"),
            Statement(["s3:ListBucket"], [self.bucket_arn], sid=f"{sid}List",
                      conditions={"StringLike": {"s3:prefix": sorted([f"{p}/*" for p in prefixes] + [f"{p}/" for p in prefixes])}}),
            Statement(["kms:Decrypt"], [self._key.key_arn], sid=f"{sid}Decrypt"),
        ]

    def grant_write(self, prefix: str, *, sid: str) -> list[Statement]:
        """Put new objects under `prefix` (no delete, no overwrite protection bypass), encrypting with the bucket key."""
        return [
            Statement(["s3:PutObject"], [f"{self.bucket_arn}/{prefix}/*"], sid=f"{sid}Write"),
            Statement(["kms:GenerateDataKey"], [self._key.key_arn], sid=f"{sid}Encrypt"),
        ]

    def grant_read_write(self, prefixes: list[str], *, sid: str) -> list[Statement]:
        """Read, list and put objects under `prefixes` (no trailing slash), encrypting and decrypting with the
        bucket key. Never `s3:DeleteObject`: on a versioned bucket a put adds a version, so nothing is lost."""
        if not prefixes:
            raise ValueError("grant_read_write needs at least one prefix (a whole-bucket write is never granted)")
        return [
            Statement(["s3:GetObject", "s3:PutObject"], [f"{self.bucket_arn}/{p}/*" for p in sorted(prefixes)],
                      sid=f"{sid}ReadWrite"),
            Statement(["s3:ListBucket"], [self.bucket_arn], sid=f"{sid}List",
                      conditions={"StringLike": {"s3:prefix": sorted([f"{p}/*" for p in prefixes] + [f"{p}/" for p in prefixes])}}),
            Statement(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [self._key.key_arn], sid=f"{sid}Kms"),
        ]
