"""Registry on a directory and on S3 (a local moto server speaking the real wire protocol) — the same
code and the same assertions — plus the exact S3 requests (botocore Stubber)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from helpers import make_adapter

from tierwise_distill.registry import Limits, Registry, RegistryError, model_fingerprint
from tierwise_distill.store import AlreadyExists, ConflictError, LocalStore, S3Store, open_store

BASE = {"name": "tiny", "sha256": "ab" * 32}
DATA = {"id": "cd" * 32}
PASSED = {"passed": True, "reasons": ["ok"]}
FAILED = {"passed": False, "reasons": ["eval exact_match 0.400 does not beat production 0.900 by the margin 0.050"]}


@pytest.fixture(params=["local", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry(LocalStore(tmp_path / "reg"), Limits(max_rank=16, max_size_bytes=64 * 1024))
    c = request.getfixturevalue("s3_client")
    return Registry(S3Store(c.test_bucket, "adapters", client=c), Limits(max_rank=16, max_size_bytes=64 * 1024))


def publish(reg: Registry, tmp: Path, name: str = "billing", gate: dict | None = PASSED, **kw: Any) -> dict:
    return reg.publish(name, make_adapter(tmp / f"a{len(list(tmp.iterdir()))}", **kw), base_model=BASE,
                       dataset=DATA, metrics={"final_loss": 1.5}, gate_report=gate)


def test_publish_writes_manifest_with_hashes_and_versions_increase(registry: Registry, tmp_path: Path) -> None:
    m1 = publish(registry, tmp_path)
    m2 = publish(registry, tmp_path)
    assert (m1["version"], m2["version"]) == (1, 2)
    assert m1["name"] == "billing" and m1["base_model"] == BASE and m1["dataset"] == DATA and m1["rank"] == 8
    assert m1["metrics"] == {"final_loss": 1.5} and m1["gate"] == {"passed": True, "report": "gate_report.json"}
    assert set(m1["files"]) == {"adapter_config.json", "adapter_model.safetensors", "gate_report.json"}
    assert m1["size_bytes"] == sum(f["size_bytes"] for k, f in m1["files"].items() if k != "gate_report.json")
    assert registry.versions("billing") == [1, 2] and registry.names() == ["billing"]
    assert registry.verify("billing", 1)["version"] == 1


def test_versions_are_immutable(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path)
    with pytest.raises(AlreadyExists):
        registry.store.put_new("billing/versions/1/manifest.json", b"{}")
    assert registry.manifest("billing", 1)["version"] == 1


def test_verify_detects_a_tampered_file(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path)
    registry.store.put("billing/versions/1/files/adapter_model.safetensors", b"evil")
    with pytest.raises(RegistryError, match="does not match its manifest sha256"):
        registry.verify("billing", 1)
    with pytest.raises(RegistryError, match="does not match"):
        registry.materialize("billing", 1, tmp_path / "cache")


def test_materialize_copies_checked_files(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path)
    d = registry.materialize("billing", 1, tmp_path / "cache")
    assert d == tmp_path / "cache" / "billing" / "1"
    assert json.loads((d / "adapter_config.json").read_text())["r"] == 8
    assert json.loads((d / "gate_report.json").read_text())["passed"] is True


def test_fails_over_rank_limit_with_clear_message(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"LoRA rank 32 exceeds this environment's limit 16.*r <= 16"):
        publish(registry, tmp_path, rank=32)
    assert registry.names() == []


def test_fails_over_size_limit_with_clear_message(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"adapter is 128\.\d KiB, over this environment's limit 64\.0 KiB"):
        publish(registry, tmp_path, size=128 * 1024)
    assert registry.names() == []


def test_promote_and_rollback_move_the_pointer(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path)
    publish(registry, tmp_path)
    publish(registry, tmp_path)
    registry.promote("billing", 1, actor="ci")
    registry.promote("billing", 2)
    c = registry.promote("billing", 3, reason="better")
    assert (c["version"], c["history"]) == (3, [2, 1])
    assert registry.resolve("billing@prod") == ("billing", 3)
    r = registry.rollback("billing", reason="bad canary")
    assert (r["version"], r["history"], r["rolled_back_from"]) == (2, [1], 3)
    assert registry.rollback("billing")["version"] == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("billing")
    assert registry.channel("billing", "prod")["version"] == 1


def test_fails_to_promote_a_gate_failure_or_ungated_version(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path, gate=FAILED)
    publish(registry, tmp_path, gate=None)
    with pytest.raises(RegistryError, match="failed the evaluation gate: eval exact_match 0.400 does not beat"):
        registry.promote("billing", 1)
    with pytest.raises(RegistryError, match="has no gate report"):
        registry.promote("billing", 2)
    assert registry.channel("billing", "prod") is None
    assert registry.promote("billing", 2, force=True, reason="hotfix")["forced"] is True


def test_stale_pointer_move_loses_instead_of_overwriting(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path)
    publish(registry, tmp_path)
    registry.promote("billing", 1)
    _, stale = registry.store.get("billing/channels/prod.json")
    registry.promote("billing", 2)
    with pytest.raises(ConflictError):
        registry.store.put_cas("billing/channels/prod.json", b"{}", stale)
    assert registry.channel("billing", "prod")["version"] == 2


def test_concurrent_publishers_never_share_a_version(tmp_path: Path) -> None:
    reg = Registry(LocalStore(tmp_path / "reg"))
    dirs = [make_adapter(tmp_path / f"a{i}") for i in range(6)]
    got: list[int] = []
    lock = threading.Lock()

    def go(d: Path) -> None:
        m = reg.publish("billing", d, base_model=BASE, dataset=DATA)
        with lock:
            got.append(m["version"])

    ts = [threading.Thread(target=go, args=(d,)) for d in dirs]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(got) == [1, 2, 3, 4, 5, 6]


def test_fails_on_bad_names_and_missing_provenance(tmp_path: Path) -> None:
    reg = Registry(LocalStore(tmp_path / "reg"))
    a = make_adapter(tmp_path / "a")
    with pytest.raises(RegistryError, match="invalid adapter name"):
        reg.publish("../etc", a, base_model=BASE, dataset=DATA)
    with pytest.raises(RegistryError, match="base_model.sha256 is required"):
        reg.publish("billing", a, base_model={"name": "x"}, dataset=DATA)
    with pytest.raises(RegistryError, match="dataset.id"):
        reg.publish("billing", a, base_model=BASE, dataset={})
    with pytest.raises(RegistryError, match="not a peft adapter"):
        reg.publish("billing", tmp_path, base_model=BASE, dataset=DATA)


def test_model_fingerprint_changes_with_weights(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"1")
    a = model_fingerprint(d)
    (d / "model.safetensors").write_bytes(b"2")
    assert model_fingerprint(d) != a and len(a) == 64


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    s = open_store("s3://bucket/some/prefix", s3_client=object())
    assert isinstance(s, S3Store) and (s.bucket, s.prefix) == ("bucket", "some/prefix")
    with pytest.raises(Exception, match="unsupported registry URL"):
        open_store("gs://x/y")


def test_s3_requests_are_conditional_writes() -> None:
    """The exact wire parameters: If-None-Match for immutable objects, If-Match for pointer moves,
    and 412 mapped to AlreadyExists / ConflictError."""
    import boto3

    c = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    s = S3Store("bkt", "pre", client=c)
    with Stubber(c) as st:
        st.add_response("put_object", {"ETag": '"e1"'},
                        {"Bucket": "bkt", "Key": "pre/x/versions/1/manifest.json", "Body": b"m", "IfNoneMatch": "*"})
        st.add_client_error("put_object", "PreconditionFailed", http_status_code=412,
                            expected_params={"Bucket": "bkt", "Key": "pre/x/versions/1/manifest.json", "Body": b"m",
                                             "IfNoneMatch": "*"})
        st.add_response("put_object", {"ETag": '"e3"'},
                        {"Bucket": "bkt", "Key": "pre/x/channels/prod.json", "Body": b"p", "IfMatch": '"e2"'})
        st.add_client_error("put_object", "PreconditionFailed", http_status_code=412,
                            expected_params={"Bucket": "bkt", "Key": "pre/x/channels/prod.json", "Body": b"p",
                                             "IfMatch": '"e2"'})
        s.put_new("x/versions/1/manifest.json", b"m")
        with pytest.raises(AlreadyExists):
            s.put_new("x/versions/1/manifest.json", b"m")
        assert s.put_cas("x/channels/prod.json", b"p", "e2") == "e3"
        with pytest.raises(ConflictError):
            s.put_cas("x/channels/prod.json", b"p", "e2")
        st.assert_no_pending_responses()
