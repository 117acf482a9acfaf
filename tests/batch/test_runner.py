"""Batch runs on a 2-worker LocalCluster (worker processes, one thread each): results table,
figures, resume without recomputation, a failing case recorded with its reason, batch
evaluate, and a worker process killed mid-run."""

from __future__ import annotations

import json
import os
import signal

import pandas as pd

from hepablate.batch import load_tasks, run_batch
from hepablate.batch.store import ResultStore

from ._helpers import FAST_LASER


def _table(path, cases, powers, extra_rows=""):
    opts = ",".join(FAST_LASER)
    vals = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in FAST_LASER.values())
    lines = [f"id,case,modality,power_w,{opts}"]
    lines += [f"p{p},{cases}/laser,laser,{p},{vals}" for p in powers]
    path.write_text("\n".join(lines) + "\n" + extra_rows)
    return path


def test_run_table_resume_and_a_failing_case(client, cases, tmp_path):
    opts = ",".join(FAST_LASER)
    broken = f"broken,{cases}/broken,laser,3," + ",".join("" for _ in FAST_LASER) + "\n"
    t = _table(tmp_path / "t.csv", cases, [3, 4], extra_rows=broken)
    assert opts  # the broken row gives no options: defaults
    tasks = load_tasks(t, "plan")
    out = tmp_path / "out"
    report = run_batch(tasks, out, client=client)
    assert (report.total, report.done, report.reused, report.failed) == (3, 2, 0, 1)
    ((rid, reason),) = report.failures
    assert rid == "broken" and "case.yaml" in reason and "\n" not in reason

    frame = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert list(frame["id"]) == list(csv["id"]) == ["p3", "p4", "broken"]
    ok = frame[frame["state"] == "done"]
    assert set(ok["status"]) <= {"feasible", "infeasible"}
    assert ok["target_coverage"].notna().all() and ok["ablation_volume_ml"].gt(0).all()
    assert list(ok["options.power_w"]) == [3, 4]
    assert (ok["provenance.hepablate_version"] != "").all()
    assert "case.yaml" in json.loads(ok["provenance.input_hashes"].iloc[0])
    bad = frame[frame["id"] == "broken"].iloc[0]
    assert bad["state"] == "failed" and "case.yaml" in bad["error"]
    assert (out / "figures" / "coverage_vs_options.power_w.png").stat().st_size > 1000
    assert (out / "figures" / "coverage_by_case.png").exists()

    store = ResultStore(out)
    stamps = {t.key: store.path(t.key).stat().st_mtime_ns for t in tasks[:2]}
    # Again, with one more row: only the new row and the failed one are run.
    t2 = _table(tmp_path / "t2.csv", cases, [3, 4, 5], extra_rows=broken)
    seen = []
    report2 = run_batch(load_tasks(t2, "plan"), out, client=client, on_record=seen.append)
    assert (report2.reused, report2.done, report2.failed) == (2, 1, 1)
    assert sorted(r["id"] for r in seen) == ["broken", "p5"]
    assert {k: store.path(k).stat().st_mtime_ns for k in stamps} == stamps

    # The same plans, evaluated from their plan files: the same numbers.
    plan_file = tmp_path / "p3.json"
    plan_file.write_text(store.get(tasks[0].key)["plan"])
    te = tmp_path / "e.csv"
    te.write_text(f"id,case,plan\ne3,{cases}/laser,{plan_file}\n")
    rep_e = run_batch(load_tasks(te, "evaluate"), tmp_path / "eval", client=client, figures=False)
    assert rep_e.done == 1
    ev = pd.read_csv(tmp_path / "eval" / "results.csv").iloc[0]
    first = csv.iloc[0]
    for col in ("status", "target_coverage", "min_margin_mm", "ablation_volume_ml"):
        assert ev[col] == first[col], col


def test_worker_killed_mid_run_loses_nothing(client, cases, tmp_path):
    t = _table(tmp_path / "t.csv", cases, [2.5, 3, 3.5, 4, 4.5, 5])
    tasks = load_tasks(t, "plan")
    out = tmp_path / "out"
    store = ResultStore(out)
    killed: list[int] = []
    first: dict[str, int] = {}

    def kill_a_busy_worker(record):
        if killed:
            return
        first[record["key"]] = store.path(record["key"]).stat().st_mtime_ns
        busy = {w: ks for w, ks in client.processing().items() if ks}
        pids = client.run(os.getpid)
        if busy:
            pid = pids[next(iter(busy))]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    report = run_batch(tasks, out, client=client, on_record=kill_a_busy_worker, figures=False)
    assert killed, "no worker was busy after the first result"
    assert (report.done, report.failed) == (6, 0), report.failures
    assert all(store.is_done(t.key) for t in tasks)
    # The result finished before the kill was not recomputed.
    assert {k: store.path(k).stat().st_mtime_ns for k in first} == first
    pids = {r["pid"] for r in (store.get(t.key) for t in tasks)}
    assert len(pids) >= 2


def test_cli_sweep_writes_table_and_figures(run_cli, cases, tmp_path):
    import yaml

    base = {"modality": "laser", "options": dict(FAST_LASER)}
    spec = {"base": base, "cases": [str(cases / "laser")], "grid": {"power_w": [3, 4]}}
    s = tmp_path / "sweep.yaml"
    s.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    r = run_cli("batch", "sweep", s, "--out", out, "--workers", "2", "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert (summary["rows"], summary["done"], summary["failed"]) == (2, 2, 0)
    frame = pd.read_csv(out / "results.csv")
    assert list(frame["id"]) == ["laser power_w=3", "laser power_w=4"]
    assert (out / "figures" / "coverage_vs_options.power_w.png").exists()
    # Again: nothing to compute, no cluster started.
    r2 = run_cli("batch", "sweep", s, "--out", out)
    assert r2.code == 0 and "0 computed, 2 reused, 0 failed" in r2.out
