"""Registry API latency: `hepablate serve` (uvicorn, 127.0.0.1 only) over a synthetic registry
(default 10,000 patients), driven from this second process by 20 concurrent httpx/asyncio
clients running a bounded mix of list, filter and record requests. The server is stopped at
the end. Prints JSON (p50/p95/p99 latency in ms) to stdout.

    .venv/bin/python benchmarks/bench_registry_api.py [--patients 10000] [--requests 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "benchmark password 123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _drive(
    base: str, token: str, n_clients: int, n_requests: int, n_patients: int, seed: int
) -> list[tuple[str, float, int]]:
    import httpx

    rng = random.Random(seed)
    kinds = ["patients_page", "patient", "followups_of_patient", "sessions_ire", "tumours_of"]
    plan = [(rng.choice(kinds), rng.randint(1, n_patients)) for _ in range(n_requests)]
    queue: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    for item in plan:
        queue.put_nowait(item)
    out: list[tuple[str, float, int]] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
            while True:
                try:
                    kind, pid = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                url = {
                    "patients_page": f"/patients?page={pid % 200 + 1}&page_size=50",
                    "patient": f"/patients/{pid}",
                    "followups_of_patient": f"/followups?patient_id={pid}",
                    "sessions_ire": f"/procedure_sessions?modality=ire&page={pid % 50 + 1}",
                    "tumours_of": f"/tumours?patient_id={pid}",
                }[kind]
                t0 = time.perf_counter()
                r = await c.get(url)
                out.append((kind, (time.perf_counter() - t0) * 1000, r.status_code))

    await asyncio.gather(*(client() for _ in range(n_clients)))
    return out


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live children (uvicorn worker processes)."""
    total = _proc_cpu_s(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += _tree_cpu_s(int(child))
    return total


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--db", default=None, help="existing registry URL (skips generation)")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    args = ap.parse_args()
    import httpx

    from hepablate.registry import db, synthetic
    from hepablate.registry.auth import add_user

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        gen_s = 0.0
        if args.db is None:
            db.migrate(url)
            t0 = time.perf_counter()
            synthetic.generate(args.patients, 1, url, sites=("north",))
            gen_s = time.perf_counter() - t0
        with db.write_transaction(db.connect(url)) as conn:
            add_user(conn, f"bench{os.getpid()}", PASSWORD, "clinician", "north")
        db.dispose(url)
        port = _free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("hepablate")),
                "serve",
                "--db",
                url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/docs", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            r = httpx.post(
                base + "/auth/token", json={"username": f"bench{os.getpid()}", "password": PASSWORD}
            )
            token = r.json()["access_token"]
            asyncio.run(_drive(base, token, args.clients, 200, args.patients, 0))  # warm-up
            t0 = time.perf_counter()
            cpu_srv0, cpu_cli0 = _tree_cpu_s(server.pid), time.process_time()
            res = asyncio.run(_drive(base, token, args.clients, args.requests, args.patients, 1))
            wall = time.perf_counter() - t0
            cpu_srv = _tree_cpu_s(server.pid) - cpu_srv0
            cpu_cli = time.process_time() - cpu_cli0
        finally:
            server.terminate()
            server.wait(timeout=30)
    lat = [ms for _, ms, _ in res]
    by_kind = {}
    for kind in sorted({k for k, _, _ in res}):
        xs = [ms for k, ms, _ in res if k == kind]
        by_kind[kind] = {"n": len(xs), "p50_ms": _pct(xs, 50), "p95_ms": _pct(xs, 95)}
    print(
        json.dumps(
            {
                "benchmark": "registry_api",
                "backend": url.split(":", 1)[0],
                "patients": args.patients,
                "clients": args.clients,
                "server_workers": args.workers,
                "requests": len(res),
                "errors": sum(1 for _, _, s in res if s != 200),
                "throughput_rps": round(len(res) / wall, 1),
                "p50_ms": _pct(lat, 50),
                "p95_ms": _pct(lat, 95),
                "p99_ms": _pct(lat, 99),
                "server_cpu_ms_per_request": round(cpu_srv / len(res) * 1000, 2),
                "client_cpu_ms_per_request": round(cpu_cli / len(res) * 1000, 2),
                "load_average_1min_after": round(os.getloadavg()[0], 2),
                "by_request": by_kind,
                "generate_seconds": round(gen_s, 1),
                "cpu": _cpu(),
                "cores": os.cpu_count(),
            },
            indent=2,
        )
    )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
