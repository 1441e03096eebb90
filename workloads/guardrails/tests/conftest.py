from __future__ import annotations

from pathlib import Path

import pytest

from tierwise_guardrails.engine import Guard
from tierwise_guardrails.injection.detector import InjectionDetector
from tierwise_guardrails.injection.v2 import InjectionDetectorV2
from tierwise_guardrails.pii.detector import PiiDetector
from tierwise_guardrails.policy import PolicySet
from tierwise_guardrails.settings import Settings

KEY = b"test-key-0123456789abcdef0123456789"


@pytest.fixture(scope="session")
def pii_detector() -> PiiDetector:
    """spaCy loads in ~1 s: share one detector (it is stateless) across the session."""
    return PiiDetector(enable_ner=True)


@pytest.fixture(scope="session")
def injection_detector() -> InjectionDetectorV2:
    """The shipped default (injection-v2)."""
    return InjectionDetectorV2()


@pytest.fixture(scope="session")
def injection_detector_v1() -> InjectionDetector:
    return InjectionDetector()


@pytest.fixture
def make_settings(tmp_path: Path):
    def _make(**over) -> Settings:
        base = {"data_dir": tmp_path / "data", "hmac_key": KEY.decode()}
        return Settings(**(base | over))

    return _make


@pytest.fixture
def make_guard(pii_detector, injection_detector, make_settings):
    from tierwise_guardrails.audit import AuditLog
    from tierwise_guardrails.review_queue import LocalReviewQueue

    created = []

    def _make(policies: PolicySet | None = None, **settings_over) -> Guard:
        s = make_settings(**settings_over)
        q = LocalReviewQueue(s.resolved_queue_path)
        created.append(q)
        return Guard(
            pii=pii_detector, injection=injection_detector, policies=policies or PolicySet(), key=s.key_bytes,
            audit=AuditLog(s.resolved_audit_path, s.key_bytes), queue=q, max_input_bytes=s.max_input_bytes,
        )

    yield _make
    for q in created:
        q.close()
