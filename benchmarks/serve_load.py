"""`ragcli serve` under load, on loopback only, bounded in count and time.

    .venv/bin/python benchmarks/serve_load.py frameworks [--requests 2000]
    .venv/bin/python benchmarks/serve_load.py load [SQUAD_JSON] [--requests 200] [--cli 5]
                                              [--soak 0] [--soak-seconds 900] [--ingest-docs 0]

frameworks: the same JSON endpoint (read a small JSON body, answer a 3 KB JSON object) on Starlette and
on FastAPI (with a pydantic body model, as FastAPI is used), each under uvicorn in its own process;
requests alternate between them on keep-alive connections, so both see the same machine.

load: the SQuAD contexts are indexed once (benchmarks/out/serve-home); a real `ragcli serve` process
(default configuration, port 0) answers distinct SQuAD questions so that no phase reuses another's
query embeddings. Phases:
  1. overhead   concurrency 1, cache off: client wall minus the response's timings_ms.total, and the
                server's pipeline time next to the same ask in this (warm) process, interleaved;
  2. throughput concurrency 1 and 8, cache off; concurrency 8 with the cache on and 40% repeats;
  3. cli        `ragcli ask --json` in a fresh process through the server, and with --no-server;
  4. soak       (--soak N) N requests at concurrency 4: errors, RSS growth, p95 first vs last 1,000;
  5. ingest     (--ingest-docs N) concurrency 2 while another process ingests N new documents (they stay
                in the index: delete benchmarks/out/serve-home to start from the SQuAD contexts alone).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks/out"

from ragcli.serve.client import NoDelayConnection  # noqa: E402  (after the path set-up above)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95), "mean": round(statistics.fmean(values), 2) if values else 0.0}


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.last_server_ms = 0.0  # meaningful at concurrency 1 only

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = NoDelayConnection("127.0.0.1", self.port, timeout=120)
        payload = json.dumps(body).encode()
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            conn.close()
            return 0, {}, (time.perf_counter() - started) * 1000
        wall = (time.perf_counter() - started) * 1000
        timing = response.getheader("server-timing") or "dur=0"
        self.last_server_ms = float(timing.rsplit("dur=", 1)[1])
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = {}
        return response.status, parsed, wall


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(
    client: Client, bodies: list[dict[str, Any]], concurrency: int, deadline: float | None = None, pid: int | None = None
) -> dict[str, Any]:
    """Send every body (at most until `deadline`) with `concurrency` threads; per-request results in order.
    With the server's `pid`, also its CPU time per answered request and the cores it kept busy."""
    results: list[tuple[int, float, float] | None] = [None] * len(bodies)
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None or (deadline is not None and time.monotonic() > deadline):
                return
            status, data, wall = client.post("/v1/ask", bodies[i])
            results[i] = (status, wall, float((data.get("timings_ms") or {}).get("total", 0.0)))

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    done = [r for r in results if r is not None]
    ok = [r for r in done if r[0] == 200]
    server_cpu = {"server_cpu_ms_per_request": round(1000 * cpu / max(1, len(ok)), 1),
                  "server_cores_busy": round(cpu / seconds, 2)} if pid is not None else {}  # fmt: skip
    return {
        **server_cpu,
        "concurrency": concurrency,
        "requests": len(done),
        "errors": len(done) - len(ok),
        "statuses": sorted({r[0] for r in done}),
        "qps": round(len(ok) / seconds, 2),
        "wall_ms": summary([r[1] for r in ok]),
        "pipeline_ms": summary([r[2] for r in ok]),
        "walls": [r[1] for r in done],
    }


def strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "walls"}


# ----- frameworks --------------------------------------------------------------------------------------
FRAMEWORK_APP = textwrap.dedent(
    """
    import json, socket, sys
    import uvicorn
    kind = sys.argv[1]
    ANSWER = {"answer": "x" * 400, "citations": [{"n": i, "source": "/docs/file.md", "text": "y" * 500} for i in range(5)],
              "timings_ms": {"embed": 1.0, "retrieve": 2.0, "total": 3.0}, "request_id": "0" * 32}
    if kind == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
        async def ask(request):
            body = json.loads(await request.body())
            return Response(json.dumps(ANSWER | {"question": body["question"]}), media_type="application/json")
        app = Starlette(routes=[Route("/v1/ask", ask, methods=["POST"])])
    else:
        from fastapi import FastAPI
        from pydantic import BaseModel
        class AskBody(BaseModel):
            question: str
            k: int | None = None
            mode: str | None = None
            rerank: bool | None = None
            provider: str | None = None
            no_cache: bool = False
        app = FastAPI()
        @app.post("/v1/ask")
        async def ask(body: AskBody) -> dict:
            return ANSWER | {"question": body.question}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP); sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    """
)


def frameworks(args: argparse.Namespace) -> dict[str, Any]:
    procs: dict[str, subprocess.Popen[str]] = {}
    clients: dict[str, Client] = {}
    try:
        for kind in ("starlette", "fastapi"):
            procs[kind] = subprocess.Popen(
                [sys.executable, "-c", FRAMEWORK_APP, kind], stdout=subprocess.PIPE, text=True
            )
            assert procs[kind].stdout is not None
            clients[kind] = Client(int(procs[kind].stdout.readline()))
        body = {"question": "How do I reset the device?", "k": 5, "mode": "hybrid", "no_cache": True}
        walls: dict[str, list[float]] = {kind: [] for kind in clients}
        deadline = time.monotonic() + 60
        for client in clients.values():  # until it listens
            while client.post("/v1/ask", body)[0] != 200:
                assert time.monotonic() < deadline, "a framework app did not start"
                time.sleep(0.1)
        for _ in range(100):  # warm-up
            for client in clients.values():
                client.post("/v1/ask", body)
        for i in range(args.requests):
            order = list(clients) if i % 2 else list(reversed(clients))
            for kind in order:
                status, _, wall = clients[kind].post("/v1/ask", body)
                assert status == 200
                walls[kind].append(wall)
        return {kind: summary(values) for kind, values in walls.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)


# ----- load ------------------------------------------------------------------------------------------------
def build_home(squad: str, extra_env: dict[str, str]) -> tuple[dict[str, str], list[str], list[Any]]:
    from ragcli.config import load_settings
    from ragcli.evaluation.harness import build_index
    from ragcli.evaluation.squad import load_squad, paragraph_documents

    home = OUT / "serve-home"
    env = {"RAGCLI_HOME": str(home)} | extra_env
    settings = load_settings(env=env)
    examples = load_squad(squad)
    build_index(settings, paragraph_documents(examples))
    shutil.rmtree(home / "cache" / "answers", ignore_errors=True)
    for vectors in (home / "cache").glob("questions-*.f32"):
        vectors.unlink()
    seen: set[str] = set()
    questions = []
    for e in examples:
        if not e.is_impossible and e.question not in seen:
            seen.add(e.question)
            questions.append(e.question)
    return env, questions, examples


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    home = Path(env["RAGCLI_HOME"])
    (home / "serve.json").unlink(missing_ok=True)
    child = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | env | {"PYTHONPATH": str(REPO)}
    log = (OUT / "serve-load.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ragcli", "-q", "serve", "--port", "0"], env=child, stderr=log, stdout=log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            info = json.loads((home / "serve.json").read_text())
            if info["pid"] == proc.pid:
                port = int(info["port"])
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return proc, port
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def overhead_phase(client: Client, env: dict[str, str], questions: list[str]) -> dict[str, Any]:
    """Blocks of 10 questions, alternately to the server and to a warm engine in this process, each its
    own questions (a question asked twice would find its embedding cached the second time). Blocks, not
    single questions: onnxruntime's threads spin for a while after a run, which would tax the other side."""
    from ragcli.config import load_settings
    from ragcli.query import AskOptions, ask_with_cache

    settings = load_settings(env=env)
    _, engine = ask_with_cache(settings, "warm up", AskOptions(), use_cache=False)
    overhead, outside, server_pipeline, process_pipeline = [], [], [], []
    half = len(questions) // 2
    for start in range(0, half, 10):
        for question in questions[start : min(start + 10, half)]:
            status, data, wall = client.post("/v1/ask", {"question": question, "no_cache": True})
            assert status == 200, data
            total = data["timings_ms"]["total"]
            overhead.append(wall - total)
            outside.append(client.last_server_ms - total)
            server_pipeline.append(total)
        for question in questions[half + start : half + min(start + 10, half)]:
            result, engine = ask_with_cache(settings, question, AskOptions(), use_cache=False, engine=engine)
            process_pipeline.append(result["timings_ms"]["total"])
    return {
        "server_overhead_ms": summary(overhead),
        "of_which_in_server_outside_pipeline_ms": summary(outside),
        "server_pipeline_ms": summary(server_pipeline),
        "warm_process_pipeline_ms": summary(process_pipeline),
    }


def cli_phase(env: dict[str, str], question: str, runs: int) -> dict[str, Any]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | env | {"PYTHONPATH": str(REPO)}
    out: dict[str, Any] = {}
    for label, code in (("python_startup", "pass"), ("import_ragcli_cli", "import ragcli.cli")):
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=child, check=True, cwd=REPO)
            walls.append((time.perf_counter() - started) * 1000)
        out[label] = {"wall_ms": summary(walls)}
    for label, extra in (("server", []), ("no_server", ["--no-server"])):
        walls, via = [], set()
        for _ in range(runs if label == "server" else max(1, runs // 2)):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "ragcli", "ask", question, "--json", *extra],
                env=child, capture_output=True, text=True, check=True, cwd=REPO,
            )
            walls.append((time.perf_counter() - started) * 1000)
            via.add(json.loads(done.stdout)["via"])
        out[label] = {"wall_ms": summary(walls), "via": sorted(via)}
    return out


def soak_phase(client: Client, pid: int, questions: list[str], count: int, seconds: float) -> dict[str, Any]:
    bodies = [{"question": questions[i % len(questions)], "no_cache": True} for i in range(count)]
    warm = run_load(client, bodies[:200], 4)
    rss_start = rss_mb(pid)
    result = run_load(client, bodies[200:], 4, deadline=time.monotonic() + seconds)
    walls = result["walls"]
    first, last = walls[:1000], walls[-1000:]
    return strip(result) | {
        "warmup_errors": warm["errors"],
        "rss_mb_after_warmup": rss_start,
        "rss_mb_end": rss_mb(pid),
        "p95_first_1000_ms": pct(first, 0.95),
        "p95_last_1000_ms": pct(last, 0.95),
    }


def ingest_phase(
    client: Client, env: dict[str, str], examples: list[Any], questions: list[str], docs: int, nice: int
) -> dict[str, Any]:
    folder = OUT / "serve-ingest-docs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(7)
    contexts = [e.context for e in examples]
    for i in range(docs):  # new documents: shuffled sentences of the contexts, so they are new files and new chunks
        sentences = rng.sample(contexts, 3)
        (folder / f"doc-{i:04d}.txt").write_text(f"Synthetic note {i}\n\n" + "\n\n".join(sentences), encoding="utf-8")
    bodies = [{"question": questions[i % len(questions)], "no_cache": True} for i in range(100000)]
    idle = run_load(client, bodies[:150], 2)
    child = {k: v for k, v in os.environ.items() if not k.startswith("RAGCLI_")} | env | {"PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    prefix = ["nice", "-n", str(nice)] if nice else []
    ingest = subprocess.Popen([*prefix, sys.executable, "-m", "ragcli", "-q", "ingest", str(folder)], env=child,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    during: dict[str, Any] = {"requests": 0, "errors": 0, "walls": []}
    offset = 150
    while ingest.poll() is None:
        chunk = run_load(client, bodies[offset : offset + 40], 2)
        offset += 40
        during["requests"] += chunk["requests"]
        during["errors"] += chunk["errors"]
        during["walls"] += chunk["walls"]
    ingest_seconds = time.perf_counter() - started
    after = run_load(client, bodies[offset : offset + 20], 2)
    return {
        "documents": docs,
        "ingest_nice": nice,
        "ingest_seconds": round(ingest_seconds, 1),
        "ingest_exit": ingest.returncode,
        "idle": strip(idle),
        "during": {"requests": during["requests"], "errors": during["errors"], "wall_ms": summary(during["walls"])},
        "p95_ratio_during_vs_idle": round(pct(during["walls"], 0.95) / idle["wall_ms"]["p95"], 2),
        "after_errors": after["errors"],
    }


def load(args: argparse.Namespace) -> dict[str, Any]:
    extra_env = dict(item.split("=", 1) for item in args.env)
    env, questions, examples = build_home(args.squad, extra_env)
    rng = random.Random(13)
    rng.shuffle(questions)
    n = args.requests
    need = 3 * n + n // 5
    if len(questions) < need:
        raise SystemExit(f"need {need} distinct questions, the file has {len(questions)}")
    proc, port = start_server(env)
    client = Client(port)
    out: dict[str, Any] = {"server_rss_mb_ready": rss_mb(proc.pid)}
    try:
        sets = [questions[i * n : (i + 1) * n] for i in range(3)]
        out["overhead"] = overhead_phase(client, env, sets[0][: max(40, n // 2)])
        no_cache = [[{"question": q, "no_cache": True} for q in s] for s in sets]
        c1 = run_load(client, no_cache[1], 1, pid=proc.pid)
        c8 = run_load(client, no_cache[2], 8, pid=proc.pid)
        # Cache on, 40% of the questions repeat an earlier one of the same stream.
        fresh = questions[3 * n : 3 * n + n]
        cached_stream: list[dict[str, Any]] = []
        for i in range(n):
            if i >= 5 and rng.random() < 0.4:
                cached_stream.append(dict(rng.choice(cached_stream[: i])))
            else:
                cached_stream.append({"question": fresh[i]})
        c8_cache = run_load(client, cached_stream, 8, pid=proc.pid)
        out["throughput"] = {
            "c1_cache_off": strip(c1),
            "c8_cache_off": strip(c8),
            "c8_cache_on_40pct_repeats": strip(c8_cache),
            "c8_over_c1": round(c8["qps"] / c1["qps"], 2),
            "cache_on_over_cache_off_c8": round(c8_cache["qps"] / c8["qps"], 2),
        }
        out["server_rss_mb_after_throughput"] = rss_mb(proc.pid)
        if args.cli:
            out["cli"] = cli_phase(env, sets[0][0], args.cli)
        if args.soak:
            out["soak"] = soak_phase(client, proc.pid, questions, args.soak, args.soak_seconds)
        if args.ingest_docs:
            out["ingest"] = ingest_phase(client, env, examples, questions, args.ingest_docs, args.ingest_nice)
    finally:
        proc.send_signal(signal.SIGTERM)
        out["server_exit_code"] = proc.wait(timeout=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("frameworks")
    f.add_argument("--requests", type=int, default=2000)
    ld = sub.add_parser("load")
    ld.add_argument("squad", nargs="?", default=str(REPO.parent / "shared/eval/squad-v2-part/dev-v2.0-part.json"))
    ld.add_argument("--requests", type=int, default=200, help="Per throughput phase.")
    ld.add_argument("--cli", type=int, default=5, help="Fresh `ragcli ask` processes through the server.")
    ld.add_argument("--soak", type=int, default=0, help="Requests in the soak phase (e.g. 10000).")
    ld.add_argument("--soak-seconds", type=float, default=900.0)
    ld.add_argument("--ingest-docs", type=int, default=0)
    ld.add_argument("--ingest-nice", type=int, default=0, help="Run the ingest under `nice -n N`.")
    ld.add_argument("--env", action="append", default=[], metavar="RAGCLI_X=V",
                    help="Configuration for the server and the warm process, e.g. RAGCLI_ANSWER__GATE=false.")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    command: Callable[[argparse.Namespace], dict[str, Any]] = frameworks if args.command == "frameworks" else load
    started = time.perf_counter()
    result = command(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
