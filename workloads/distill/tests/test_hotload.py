"""Hot-load logic against a fake vLLM that follows vLLM 0.32's runtime LoRA API (load 400 when the
name exists, unload 404 when unknown, LoRA cards with ``parent`` in /v1/models, the
``vllm:lora_requests_info`` info gauge). The real server is exercised in test_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from helpers import make_adapter

from tierwise_distill.hotload import HotloadError, Rollout, VllmAdapterClient, parse_prom, parse_served, served_name
from tierwise_distill.registry import Limits, Registry
from tierwise_distill.store import LocalStore

BASE = {"name": "tiny", "sha256": "ab" * 32}


class FakeVllm:
    def __init__(self, max_lora: int = 2) -> None:
        self.loras: dict[str, str] = {}
        self.max_lora = max_lora
        self.running: dict[str, int] = {}  # adapter -> in-flight requests
        self.calls: list[str] = []
        self.metrics_reads = 0

    def metrics(self) -> str:
        self.metrics_reads += 1
        run = ",".join(k for k, v in self.running.items() if v)
        total = sum(self.running.values())
        # drain one request per scrape, like requests finishing between polls
        for k in self.running:
            if self.running[k]:
                self.running[k] -= 1
                break
        return ("# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n"
                f'vllm:lora_requests_info{{max_lora="{self.max_lora}",running_lora_adapters="old-v0",'
                f'waiting_lora_adapters=""}} 1.0e+09\n'
                f'vllm:lora_requests_info{{max_lora="{self.max_lora}",running_lora_adapters="{run}",'
                f'waiting_lora_adapters=""}} 1.7e+09\n'
                f'vllm:num_requests_running{{engine="0",model_name="tiny"}} {float(total)}\n'
                'vllm:num_requests_waiting{engine="0",model_name="tiny"} 0.0\n')

    def handle(self, req: httpx.Request) -> httpx.Response:
        self.calls.append(f"{req.method} {req.url.path}")
        if req.url.path == "/v1/models":
            data = [{"id": "tiny", "parent": None}] + [{"id": k, "root": v, "parent": "tiny"} for k, v in self.loras.items()]
            return httpx.Response(200, json={"object": "list", "data": data})
        if req.url.path == "/metrics":
            return httpx.Response(200, text=self.metrics())
        body = json.loads(req.content)
        if req.url.path == "/v1/load_lora_adapter":
            if body["lora_name"] in self.loras:
                return httpx.Response(400, json={"error": {"message": f"The lora adapter '{body['lora_name']}' has already been loaded."}})
            self.loras[body["lora_name"]] = body["lora_path"]
            return httpx.Response(200, text="Success")
        if req.url.path == "/v1/unload_lora_adapter":
            if body["lora_name"] not in self.loras:
                return httpx.Response(404, json={"error": {"message": "cannot be found"}})
            del self.loras[body["lora_name"]]
            return httpx.Response(200, text="Success")
        return httpx.Response(404)


def client(fake: FakeVllm, url: str = "http://vllm-0:8000") -> VllmAdapterClient:
    return VllmAdapterClient(url, client=httpx.Client(transport=httpx.MockTransport(fake.handle)))


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(LocalStore(tmp_path / "reg"), Limits(max_rank=16))
    for i in range(3):
        r.publish("billing", make_adapter(tmp_path / f"a{i}"), base_model=BASE, dataset={"id": "d"},
                  gate_report={"passed": True, "reasons": []})
    return r


def test_parse_prom_labels_with_escapes() -> None:
    s = parse_prom('m{a="x,y",b="q\\"z"} 3\nplain 2.5\n# comment\n')
    assert s == [("m", {"a": "x,y", "b": 'q"z'}, 3.0), ("plain", {}, 2.5)]


def test_served_names_round_trip() -> None:
    assert served_name("billing", 3) == "billing-v3" and parse_served("my-task-v12") == ("my-task", 12)
    assert parse_served("billing") is None


def test_activity_reads_the_newest_lora_info_sample() -> None:
    f = FakeVllm(max_lora=4)
    f.running = {"billing-v1": 2}
    a = client(f).activity()
    assert a.max_lora == 4 and a.running == {"billing-v1"} and a.requests_running == 2


def test_rollout_with_canary_then_finish_drains_and_unloads(reg: Registry, tmp_path: Path) -> None:
    fakes = [FakeVllm(), FakeVllm()]
    ro = Rollout(reg, [client(f, f"http://vllm-{i}:8000") for i, f in enumerate(fakes)], tmp_path / "loras",
                 max_resident=3, base_sha256=BASE["sha256"], sleep=lambda s: None)
    reg.promote("billing", 1)
    assert ro.load("billing")["routes"] == {"billing": [{"served": "billing-v1", "version": 1, "weight": 1.0}]}
    reg.promote("billing", 2)
    doc = ro.load("billing", canary=0.1)
    assert doc["schema"] == "tierwise.adapter-routes/v1" and doc["routes"]["billing"] == [
        {"served": "billing-v1", "version": 1, "weight": 0.9}, {"served": "billing-v2", "version": 2, "weight": 0.1}]
    assert all(set(f.loras) == {"billing-v1", "billing-v2"} for f in fakes)
    assert fakes[0].loras["billing-v2"] == str(tmp_path / "loras" / "billing" / "2")
    fakes[0].running = {"billing-v1": 3}  # in flight on the old version: must drain first
    done = ro.finish("billing")
    assert done["routes"]["billing"] == [{"served": "billing-v2", "version": 2, "weight": 1.0}]
    assert done["unloaded"] == ["http://vllm-0:8000:billing-v1", "http://vllm-1:8000:billing-v1"]
    assert fakes[0].running == {"billing-v1": 0} and fakes[0].metrics_reads >= 4  # polled until drained
    assert all(set(f.loras) == {"billing-v2"} for f in fakes)
    # loading again is idempotent
    ro.load("billing")
    assert sum(c == "POST /v1/load_lora_adapter" for c in fakes[0].calls) == 2


def test_rollback_reloads_the_previous_version(reg: Registry, tmp_path: Path) -> None:
    f = FakeVllm()
    ro = Rollout(reg, [client(f)], tmp_path / "loras", sleep=lambda s: None)
    reg.promote("billing", 1)
    reg.promote("billing", 2)
    ro.load("billing")
    ro.finish("billing")
    reg.rollback("billing")
    ro.load("billing")
    ro.finish("billing")
    assert set(f.loras) == {"billing-v1"}


def test_fails_when_residency_budget_is_full(reg: Registry, tmp_path: Path) -> None:
    f = FakeVllm()
    f.loras = {"support-v1": "/x", "faq-v4": "/y"}
    ro = Rollout(reg, [client(f)], tmp_path / "loras", max_resident=2)
    reg.promote("billing", 1)
    with pytest.raises(HotloadError, match=r"already holds 2 adapters \(faq-v4, support-v1\).*budget is 2"):
        ro.load("billing")
    assert "billing-v1" not in f.loras


def test_fails_for_an_adapter_trained_on_another_base(reg: Registry, tmp_path: Path) -> None:
    f = FakeVllm()
    reg.promote("billing", 1)
    ro = Rollout(reg, [client(f)], tmp_path / "loras", base_sha256="ff" * 32)
    with pytest.raises(HotloadError, match="trained on base abababababab, the servers run ffffffffffff"):
        ro.load("billing")
    assert f.loras == {}


def test_drain_times_out_instead_of_unloading_a_busy_adapter() -> None:
    f = FakeVllm()
    f.running = {"billing-v1": 10**6}
    t = [0.0]

    def sleep(s: float) -> None:
        t[0] += s

    with pytest.raises(HotloadError, match="still has requests"):
        client(f).wait_drained("billing-v1", timeout_s=3, poll_s=1, sleep=sleep, clock=lambda: t[0])


def test_vllm_errors_surface_with_their_message() -> None:
    f = FakeVllm()
    c = client(f)
    c.load("x-v1", "/p")
    with pytest.raises(HotloadError, match="400: The lora adapter 'x-v1' has already been loaded"):
        c.load("x-v1", "/p")
    with pytest.raises(HotloadError, match="404"):
        c.unload("nope-v1")


def test_server_side_path_template_skips_the_copy(reg: Registry, tmp_path: Path) -> None:
    f = FakeVllm()
    reg.promote("billing", 2)
    ro = Rollout(reg, [client(f)], tmp_path / "loras",
                 server_path_template="/models/adapters/{name}/versions/{version}/files")
    ro.load("billing")
    assert f.loras == {"billing-v2": "/models/adapters/billing/versions/2/files"}
    assert not (tmp_path / "loras").exists()


def test_cli_rollout_over_real_http(reg: Registry, tmp_path: Path) -> None:
    """`tierwise-adapters rollout` end to end over loopback HTTP against the vLLM-API fake."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from typer.testing import CliRunner

    from tierwise_distill.cli import app

    fake = FakeVllm()

    class H(BaseHTTPRequestHandler):
        def _do(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            r = fake.handle(httpx.Request(self.command, f"http://x{self.path}", content=body))
            self.send_response(r.status_code)
            self.send_header("content-length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        do_GET = do_POST = _do

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        reg.promote("billing", 1)
        reg.promote("billing", 2)
        env = {"TIERWISE_DISTILL_REGISTRY_URL": str(reg.store.root), "TIERWISE_DISTILL_LORA_ROOT": str(tmp_path / "l"),
               "TIERWISE_DISTILL_MAX_RESIDENT": "1"}
        r = CliRunner().invoke(app, ["rollout", "billing", "--server", url, "--routes-out", str(tmp_path / "routes.json")],
                               env=env)
        assert r.exit_code == 0, r.stderr
        assert json.loads((tmp_path / "routes.json").read_text())["routes"]["billing"][0]["served"] == "billing-v2"
        reg.rollback("billing")
        r = CliRunner().invoke(app, ["rollout", "billing", "--server", url], env=env)
        assert r.exit_code == 2 and "residency budget is 1" in r.stderr  # v2 still resident: finish/rollback first
        fake.loras.clear()
        r = CliRunner().invoke(app, ["rollout", "billing", "--server", url, "--phase", "finish"], env=env)
        assert r.exit_code == 2 and "does not hold billing-v1; run the load phase first" in r.stderr
    finally:
        srv.shutdown()
        srv.server_close()
