"""`tierwise-agent run PROGRAM` (the container's command) and `tierwise-agent alive` (the liveness probe)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

SERVICE = "tierwise-agents"


def build_worker(settings, program):
    import boto3
    import httpx
    from openai import OpenAI

    from .approvals import GuardrailsApprovals
    from .checkpoint import DynamoCheckpointStore
    from .config import AgentConfig
    from .runtime import Clients, Worker

    cfg = AgentConfig.load(settings.config_path)
    aws = {"region_name": cfg.region, **({"endpoint_url": settings.aws_endpoint_url} if settings.aws_endpoint_url else {})}
    http = httpx.Client(timeout=settings.request_timeout_s, limits=httpx.Limits(max_connections=8))
    llm = OpenAI(base_url=cfg.router_url, api_key=settings.router_api_key.get_secret_value(),
                 timeout=settings.request_timeout_s, max_retries=2)
    clients = Clients(sqs=boto3.client("sqs", **aws), llm=llm, http=http,
                      store=DynamoCheckpointStore(boto3.client("dynamodb", **aws), cfg.checkpoint.table, cfg.checkpoint.ttl_days),
                      approvals=GuardrailsApprovals(http, cfg.guardrails_url, cfg.approval_policy) if cfg.guardrails_url else None)
    return Worker(cfg, clients, program, receive_wait_s=settings.receive_wait_s, approval_poll_s=settings.approval_poll_s,
                  heartbeat=settings.heartbeat_path, exit_after_idle_receives=settings.exit_after_idle_receives)


def load_program(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "Program")()


def configure_logging():
    """The ``tierwise.agent`` logger (runtime.py logs through it) in the shared line convention
    (docs/logging.md): JSON lines on stdout."""
    from tierwise_logs import configure

    return configure("tierwise.agent", SERVICE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tierwise-agent")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="consume the agent's queue with PROGRAM (module:Class)")
    run.add_argument("program", nargs="?", default="tierwise_agents.example.agent:TriageAgent")
    alive = sub.add_parser("alive", help="exit 0 when the heartbeat file is fresh (liveness probe)")
    alive.add_argument("--max-age-s", type=float, default=300)
    args = ap.parse_args(argv)

    from .settings import Settings

    if args.cmd == "alive":
        hb = Path(__import__("os").environ.get("TIERWISE_AGENT_HEARTBEAT_PATH", "/tmp/heartbeat"))
        try:
            age = time.time() - hb.stat().st_mtime
        except FileNotFoundError:
            print(f"no heartbeat at {hb}", file=sys.stderr)
            return 1
        return 0 if age <= args.max_age_s else 1
    log = configure_logging()
    worker = build_worker(Settings(), load_program(args.program))
    done = worker.run()
    log.info("exit", extra={"tasks_done": done})
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
