"""The open-loop load generator of bench/router_overhead.py, and how one measured run is made of it.

``loadgen`` runs in its own child process per run (``run_child`` starts ``python _openloop.py URL RATE
DURATION_S KEY CONNS`` with the request body on stdin): raw
asyncio protocols + httptools on uvloop, one pre-framed request, callbacks instead of tasks (~20 µs of CPU
per request, so the generator is not the bottleneck on 2 shared cores), latency from each request's
*scheduled* send time (no coordinated omission). ``summarise`` turns its samples into the per-run JSON, and
``run_child`` adds the load average before the run and the measured server's CPU per request (/proc)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _router_load import pct

PY = sys.executable


def loadgen(url: str, rate: int, duration_s: float, body: bytes, auth: str, conns: int) -> dict:
    """Open-loop load in this process (``run_child`` runs it in a child process). Returns samples.

    ``conns`` > 0: that many keep-alive connections, opened before the clock starts and used in
    round-robin order (the least recently used idle connection sends next, as a proxy's pool
    spreads work); a request scheduled while all of them are busy waits in a FIFO, and its latency
    still counts from its scheduled time. ``conns`` == 0: a new TCP connection per request
    (``connection: close``), as a client without pooling does."""
    import collections

    import httptools
    import uvloop
    from urllib.parse import urlsplit

    u = urlsplit(url)
    head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {auth}\r\ncontent-length: {len(body)}\r\n")
    req = (head + ("connection: close\r\n" if conns == 0 else "") + "\r\n").encode() + body
    n = int(rate * duration_s)
    lat: list[int] = []
    st = {"failed": 0, "done": 0, "statuses": {}, "connects": 0, "live": 0, "max_backlog": 0}
    idle: collections.deque = collections.deque()
    backlog: collections.deque = collections.deque()  # scheduled times waiting for a free connection
    pc = time.perf_counter  # uvloop's loop.time() has 1 ms resolution

    class Conn(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.sched = 0.0
            self.busy = False
            self.transport = None

        def connection_made(self, t):  # noqa: ANN001
            self.transport = t
            st["connects"] += 1
            st["live"] += 1

        def send(self, sched: float) -> None:
            self.sched, self.busy = sched, True
            self.transport.write(req)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self._fail()

        def on_message_complete(self) -> None:
            code = self.parser.get_status_code()
            st["done"] += 1
            if code == 200:
                lat.append(int((pc() - self.sched) * 1e6))
            else:
                st["failed"] += 1
                st["statuses"][code] = st["statuses"].get(code, 0) + 1
            self.busy = False
            if conns and self.parser.should_keep_alive():
                if backlog:
                    self.send(backlog.popleft())
                else:
                    idle.append(self)
            else:
                self.transport.close()

        def _fail(self) -> None:
            if self.busy:
                self.busy = False
                st["done"] += 1
                st["failed"] += 1
            self.transport.close()

        def connection_lost(self, exc) -> None:  # noqa: ANN001
            st["live"] -= 1
            if self in idle:
                idle.remove(self)
            self._fail()

    async def run() -> float:
        loop = asyncio.get_running_loop()

        async def fresh(sched: float) -> None:
            try:
                _, c = await loop.create_connection(Conn, u.hostname, u.port)
            except OSError:
                st["done"] += 1
                st["failed"] += 1
                return
            c.send(sched)

        for _ in range(conns):  # the pool exists before the clock starts (a warm client)
            _, c = await loop.create_connection(Conn, u.hostname, u.port)
            idle.append(c)
        t0 = pc() + 0.05
        i = 0
        start = pc()
        while i < n:
            now = pc()
            while i < n and t0 + i / rate <= now:
                sched = t0 + i / rate
                if conns == 0:
                    loop.create_task(fresh(sched))
                else:
                    while idle and idle[0].transport.is_closing():
                        idle.popleft()
                    if idle:
                        idle.popleft().send(sched)
                    elif st["live"] == 0:  # every pooled connection was closed under us
                        st["done"] += 1
                        st["failed"] += 1
                    else:
                        backlog.append(sched)
                        st["max_backlog"] = max(st["max_backlog"], len(backlog))
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, t0 + i / rate - pc()))
        deadline = pc() + 30
        while st["done"] < n and pc() < deadline:
            await asyncio.sleep(0.005)
        return pc() - start

    wall = uvloop.run(run())
    unanswered = n - st["done"]
    return {"sent": n, "completed": len(lat), "failed": st["failed"] + unanswered, "wall_s": round(wall, 3),
            "statuses_failed": {str(k): v for k, v in st["statuses"].items()}, "unanswered": unanswered,
            "connects": st["connects"], "max_backlog": st["max_backlog"], "samples_us": lat}


def summarise(r: dict) -> dict:
    lat = r["samples_us"]
    out = {k: r[k] for k in ("sent", "completed", "failed", "wall_s", "unanswered", "statuses_failed", "connects",
                             "max_backlog")}
    out.update({"throughput_rps": round(len(lat) / r["wall_s"], 1) if r["wall_s"] else 0.0,
                "latency_p50_ms": round(pct(lat, 50) / 1000, 3), "latency_p90_ms": round(pct(lat, 90) / 1000, 3),
                "latency_p99_ms": round(pct(lat, 99) / 1000, 3), "latency_p999_ms": round(pct(lat, 99.9) / 1000, 3),
                "latency_max_ms": round(max(lat) / 1000, 3) if lat else None,
                "latency_mean_ms": round(statistics.fmean(lat) / 1000, 3) if lat else None,
                "samples_us": lat})
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (Linux /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def run_child(url: str, rate: int, duration_s: float, body: bytes, auth: str, conns: int = 32,
              cpu_pid: int | None = None) -> dict:
    """One load run in a fresh child process (the generator never shares an interpreter with anything)."""
    load = os.getloadavg()
    c0 = cpu_ticks(cpu_pid) if cpu_pid else 0
    p = subprocess.run([PY, __file__, url, str(rate), str(duration_s), auth, str(conns)],
                       input=body, capture_output=True, check=True, timeout=duration_s + 90)
    r = summarise(json.loads(p.stdout))
    r["loadavg_before"] = [round(x, 2) for x in load]
    if cpu_pid:  # the measured server's CPU over the run (includes the child's start-up, ~0.2 s idle)
        r["server_cpu_ms_per_req"] = round((cpu_ticks(cpu_pid) - c0) * 1000 / os.sysconf("SC_CLK_TCK")
                                           / max(1, r["sent"]), 4)
    return r


if __name__ == "__main__":
    url, rate, dur, key, conns = sys.argv[1:6]
    sys.stdout.write(json.dumps(loadgen(url, int(rate), float(dur), sys.stdin.buffer.read(), key, int(conns))))
