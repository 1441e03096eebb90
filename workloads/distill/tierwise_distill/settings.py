"""Settings for the CLI and jobs (env prefix ``TIERWISE_DISTILL_``). Built once per command."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierwise_distill.registry import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERWISE_DISTILL_", extra="ignore")

    registry_url: str = Field("./adapter-registry", description="path, file:///path or s3://bucket/prefix")
    s3_endpoint_url: str | None = None  # a local S3 server in tests; unset on AWS
    aws_region: str | None = None
    max_rank: int = Field(64, ge=1, description="vLLM --max-lora-rank of this environment's servers")
    max_adapter_mb: float = Field(256.0, gt=0)
    max_resident: int = Field(4, ge=1, description="adapters one vLLM server may hold (--max-cpu-loras)")
    guardrails_url: str | None = None
    lora_root: str = "./lora-cache"
    # e.g. "/models/adapters/{name}/versions/{version}/files" where the vLLM pods mount the bucket
    server_lora_path: str | None = None

    def limits(self) -> Limits:
        return Limits(max_rank=self.max_rank, max_size_bytes=int(self.max_adapter_mb * 1024 * 1024))

    def s3_client(self):  # noqa: ANN201 - boto3 client
        if not self.registry_url.startswith("s3://"):
            return None
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint_url, region_name=self.aws_region)
