"""PII scrubbing through the real guardrails service (its own venv, started on loopback): the HTTP
contract the dataset builder relies on, against the implementation rather than a fake."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import REPO, free_port

from tierwise_distill import synthetic
from tierwise_distill.dataset import build_dataset, load_split
from tierwise_distill.scrub import GuardrailsHttpScrubber

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def guardrails_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    py = Path(os.environ.get("TIERWISE_GUARDRAILS_PYTHON", REPO / ".venv-guardrails" / "bin" / "python"))
    if not py.exists():
        msg = f"guardrails python {py} not found (make .make/venv-guardrails, or set TIERWISE_GUARDRAILS_PYTHON)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    port = free_port()
    data = tmp_path_factory.mktemp("guardrails")
    log = open(data / "server.log", "wb")
    p = subprocess.Popen([str(py), "-m", "uvicorn", "--factory", "tierwise_guardrails.app:create_app", "--host",
                          "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                         env=os.environ | {"TIERWISE_GUARDRAILS_DATA_DIR": str(data)}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for readiness (an event, not a fixed sleep)
            if p.poll() is not None:
                pytest.fail(f"guardrails exited {p.returncode}: {(data / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("guardrails did not become healthy in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def test_dataset_scrubbed_by_the_real_guardrails_service(guardrails_url: str, tmp_path: Path) -> None:
    recs = synthetic.exports(12) + [
        synthetic.record(500, "ticket: I am John Smith, call +1 415 555 0132 or mail john.smith@example.com "
                              "about my invoice", "billing")]
    ex = tmp_path / "ex.jsonl"
    ex.write_text("".join(json.dumps(r) + "\n" for r in recs))
    s = GuardrailsHttpScrubber(guardrails_url)
    try:
        m = build_dataset([ex], tmp_path / "ds", s)
    finally:
        s.close()
    assert m["scrubber"] == "guardrails-http" and m["counts"]["pii_findings"] >= 2
    text = json.dumps(load_split(m["path"], "train") + load_split(m["path"], "eval"))
    assert "john.smith@example.com" not in text and "555 0132" not in text
    assert "queue billing" in text  # ordinary text passes through
