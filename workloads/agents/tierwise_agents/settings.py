"""Process settings (env prefix `TIERWISE_AGENT_`). Built once, in the CLI, and injected."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERWISE_AGENT_", extra="forbid", frozen=True)

    def __init__(self, **values):
        # the cluster mounts the router key as a file named after this setting (TIERWISE_AGENT_SECRETS_DIR)
        import os

        secrets = os.environ.get("TIERWISE_AGENT_SECRETS_DIR")
        super().__init__(**({"_secrets_dir": secrets} if secrets and os.path.isdir(secrets) else {}), **values)

    #: The agent.json the platform renders into the agent's ConfigMap.
    config_path: Path = Path("/etc/tierwise/agent.json")
    #: The agent's router key (a file from its Secret, or the env var in tests); sent as the OpenAI API key.
    router_api_key: SecretStr
    heartbeat_path: Path = Path("/tmp/heartbeat")
    #: Override for AWS endpoints (tests: a loopback moto server). Unset in the cluster.
    aws_endpoint_url: str | None = None
    #: SQS long-poll wait per receive.
    receive_wait_s: int = Field(20, ge=0, le=20)
    #: How often a pending approval is polled (and the message's visibility extended).
    approval_poll_s: float = Field(2.0, gt=0)
    #: Stop after this many receives that returned nothing (None: run forever, as in the cluster).
    exit_after_idle_receives: int | None = Field(None, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)
