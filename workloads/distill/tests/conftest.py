"""Shared fixtures. Tests marked ``train`` need torch/transformers/peft (the ``train`` extra, i.e. the
heavy ``.venv-vllm``); where those are absent (the light ``.venv-distill``) they are skipped with a
reason — ``make test-distill-train`` runs them. The e2e test also needs the vLLM python."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from helpers import free_port, load_harness  # noqa: E402

HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs the `train` extra (torch/transformers/peft): run with .venv-vllm")
    for it in items:
        if "train" in it.keywords and not HAS_TORCH:
            it.add_marker(skip)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 server that speaks the real wire protocol (moto), on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


@pytest.fixture
def s3_client(s3_endpoint: str, request: pytest.FixtureRequest) -> Any:
    import boto3

    c = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                     aws_access_key_id="AKIDTEST", aws_secret_access_key="test")
    bucket = "tw-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    c.create_bucket(Bucket=bucket)
    c.test_bucket = bucket  # type: ignore[attr-defined]
    return c


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The router harness's tiny Llama + tokenizer (built in-process, no downloads)."""
    build = load_harness("build_tiny")
    return build.build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tierwise_distill import synthetic
    from tierwise_distill.dataset import build_dataset
    from tierwise_distill.scrub import FallbackRegexScrubber

    d = tmp_path_factory.mktemp("data")
    return build_dataset([synthetic.write_exports(d / "exports.jsonl")], d / "datasets", FallbackRegexScrubber(),
                         guard=synthetic.write_guard(d / "guard.jsonl"))
