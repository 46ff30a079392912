#!/usr/bin/env python3
"""Soak: many builds through a farm while its parts fail, seen as CI sees it, and what it cost.

    .venv/bin/python bench/soak.py [--builds 100] [--clients 10] [--workers 2]
                                   [--broker redis|rabbitmq] [--deadline 2400] [--faults ...]

`xbuild serve` and --workers `xbuild worker`s on a real broker (Redis or RabbitMQ: a farm runs on
one; run the soak once on each), jobs and artifacts in a real S3 server (SeaweedFS). --clients CI
jobs run the real client, `xbuild submit --wait` as a subprocess, one after another, --builds in
all (examples/hello-make for rpi3, each with its own source, so none is a cache hit). Meanwhile, at
even shares of the builds done and while builds are in flight, in this order:

- a worker that is running a build is SIGKILLed (its build container seen running, its log's
  last job the running one) and replaced;
- the broker is restarted (SIGTERM, then started on the same data);
- SeaweedFS is restarted;
- the API is SIGKILLed and started again 5 s later on the same port.

Reported: lost (goal 0): builds whose client exited non-zero or whose job did not succeed; run
twice (goal 0, the killed worker's build apart, which must run again): jobs whose workers' logs
show more than one attempt; the clients that said they were retrying; p50/p95 submit-to-done
latency of the clients; peak RSS of serve and of each worker (its process tree: Celery's prefork
child included). Real processes throughout (tests/services.py, tests/s3server.py); everything
stops by --deadline seconds at the latest. tests/integration/test_faults.py runs a small one."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import requests  # noqa: E402

from tests.s3server import SeaweedFS  # noqa: E402
from tests.services import RabbitMQ, Redis, Server, service_env, xbuild_proc  # noqa: E402

TOKEN = "soak-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = ("succeeded", "failed", "timed_out", "cancelled")
FAULTS = ("kill a worker", "restart the broker", "restart s3", "restart the api")
API_DOWN = 5.0  # seconds between the API's kill and its start


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        p = int(status.parent.name)
        children.setdefault(int(fields["PPid"]), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def _containers_of(job_id: str) -> list[str]:
    """The build containers of a job running now (their label names it): proof that it builds."""
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=org.xbuild.job={job_id}"],
                         capture_output=True, text=True, timeout=30).stdout
    return out.split()


class Farm:
    def __init__(self, tmp: Path, n_workers: int, broker: str, log):
        self.tmp, self.log = tmp, log
        self.s3 = SeaweedFS(tmp / "s3")
        self.s3.start()
        self.broker = Redis(tmp / "redis") if broker == "redis" else RabbitMQ(tmp / "rabbitmq")
        store = f"s3://xbuild-soak-{uuid.uuid4().hex[:8]}/farm"
        self.env = service_env(tmp, XBUILD_BROKER_URL=self.broker.url, XBUILD_API_TOKENS=TOKEN,
                        XBUILD_REAPER_INTERVAL="5", XBUILD_LEASE_TTL="15", XBUILD_REQUEUE_AFTER="60",
                        **self.s3.env(store))
        self.server = Server(self.env, tmp)
        self.url = self.server.url
        self.workers: list = []
        for _ in range(n_workers):
            self.add_worker()
        self.peak: dict[str, int] = {}

    def add_worker(self):
        n = len(self.workers)
        self.workers.append(xbuild_proc(["worker", "--name", f"soak{n}@bench"], self.env,
                                        self.tmp / f"worker{n}.log"))

    def restart_s3(self) -> None:
        """SIGTERM and start SeaweedFS on the same data. Its single-process `weed server` does not
        always come back whole: its volume server may never re-register with the restarted master,
        and every object written before is "volume not found" for good (its own bug, seen here).
        That is a lost disk, not a restart, so the bench checks that an object written before is
        readable again, and restarts it once more when it is not (reported)."""
        import boto3
        s3 = boto3.client("s3", endpoint_url=self.s3.endpoint, region_name="us-east-1",
                          aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        s3.put_object(Bucket="xbuild-ready-probe", Key="before-restart", Body=b"ok")
        for attempt in range(1, 4):
            self.s3.stop()
            self.s3.start()
            for _ in range(60):
                try:
                    s3.get_object(Bucket="xbuild-ready-probe", Key="before-restart")["Body"].read()
                    return
                except Exception:  # noqa: BLE001 - not whole yet
                    time.sleep(1)
            self.log(f"soak: SeaweedFS restart {attempt} lost its volumes: restarting it again")
        raise RuntimeError("SeaweedFS did not come back with its data after 3 restarts")

    def restart_api(self) -> None:
        """SIGKILL serve, and start it again API_DOWN seconds later where its clients expect it."""
        port = self.server.port
        self.server.stop(signal.SIGKILL)
        time.sleep(API_DOWN)
        self.server = Server(self.env, self.tmp, port=port)

    def kill_a_running_worker(self) -> dict | None:
        """SIGKILL a worker that is running a build now, and start another; None when none is.
        Running: the job's state is running, its build container is up, and the job is the last
        one the worker's log started (a worker runs one build at a time)."""
        listing = requests.get(f"{self.url}/v1/builds", headers=AUTH, timeout=30).json()["builds"]
        running = {j["id"] for j in listing if j["state"] == "running"}
        for n, w in enumerate(self.workers):
            started = re.findall(r"job (\S+): attempt \d+", Path(w.log.name).read_text(errors="replace"))
            job_id = started[-1] if started and w.p.poll() is None else None
            if job_id not in running or not (containers := _containers_of(job_id)):
                continue
            w.kill()
            after = requests.get(f"{self.url}/v1/builds/{job_id}", headers=AUTH, timeout=30).json()
            self.add_worker()
            return {"job": job_id, "worker": n, "containers": containers, "state_after": after["state"],
                    "attempts_after": after.get("attempts")}
        return None

    def sample(self) -> None:
        procs = {"serve": self.server.proc, **{f"worker{i}": w for i, w in enumerate(self.workers)}}
        for name, proc in procs.items():
            if proc.p.poll() is None:
                self.peak[name] = max(self.peak.get(name, 0), _tree_rss(proc.p.pid))

    def attempts(self) -> dict[str, int]:
        """job id -> attempts started, from the workers' own logs."""
        runs: dict[str, int] = {}
        for log in self.tmp.glob("worker*.log"):
            for job_id in re.findall(r"job (\S+): attempt \d+", log.read_text(errors="replace")):
                runs[job_id] = runs.get(job_id, 0) + 1
        return runs

    def waited_out(self) -> dict[str, int]:
        """Outages the workers waited out (xbuild/host/retry.py says each retry in their logs)."""
        text = "".join(log.read_text(errors="replace") for log in self.tmp.glob("worker*.log"))
        return {"store": text.count("retrying: the store"), "lease": text.count("retrying: taking the job's lease"),
                "broker reconnects": text.count("Connection to broker lost")}

    def store_retries(self) -> int:
        """Builds started again inside one attempt because the store failed (see execute.py)."""
        return sum(log.read_text(errors="replace").count("store error, building again")
                   for log in self.tmp.glob("worker*.log"))

    def stop(self) -> None:
        for w in self.workers:
            w.kill()
        self.server.stop()
        self.broker.kill()
        self.s3.stop()


@dataclass
class Build:
    n: int
    seconds: float = 0.0
    returncode: int | None = None
    job: dict = field(default_factory=dict)
    stderr: str = ""

    @property
    def job_id(self) -> str | None:
        found = re.search(r"submitted build (\S+)", self.stderr)
        return self.job.get("id") or (found.group(1) if found else None)

    @property
    def lost(self) -> bool:
        return self.returncode != 0 or self.job.get("state") != "succeeded"


def _project(tmp: Path, n: int) -> Path:
    project = shutil.copytree(ROOT / "examples" / "hello-make", tmp / "projects" / f"soak{n}")
    with (project / "hello.c").open("a") as f:
        f.write(f"\n/* soak {n} {uuid.uuid4().hex} */\n")
    return project


def ci_job(farm: Farm, n: int, deadline: float, in_flight: set) -> Build:
    """What a CI job does: `xbuild submit --wait` with the real client, its exit code its verdict."""
    build = Build(n)
    project = _project(farm.tmp, n)
    env = {k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}
    env.update(XBUILD_TOKEN=TOKEN, XBUILD_RETRY_SECONDS="300")
    start = time.monotonic()
    in_flight.add(n)
    try:
        proc = subprocess.run([sys.executable, "-m", "xbuild", "submit", "--server", farm.url, "--target", "rpi3",
                               str(project), "--json"], capture_output=True, text=True, env=env,
                              timeout=max(1.0, deadline - start))
        build.returncode, build.stderr = proc.returncode, proc.stderr
        build.job = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    except subprocess.TimeoutExpired as exc:
        build.stderr = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
    finally:
        in_flight.discard(n)
    build.seconds = time.monotonic() - start
    (farm.tmp / "clients").mkdir(exist_ok=True)
    (farm.tmp / "clients" / f"soak{n}.stderr").write_text(build.stderr)
    return build


def client(farm: Farm, numbers: list[int], results: dict, deadline: float, in_flight: set) -> None:
    for n in numbers:
        if time.monotonic() > deadline:
            return
        results[n] = ci_job(farm, n, deadline, in_flight)


def chaos(farm: Farm, plan: list[tuple[float, str]], results: dict, total: int, in_flight: set,
          stop: threading.Event, log) -> dict:
    """Each fault of the plan at its share of the builds done, while builds are in flight."""
    events: dict = {"killed": None, "faults": []}
    plan = list(plan)
    while plan and not stop.wait(1):
        farm.sample()
        share, what = plan[0]
        done = len(results)
        if done < share * total or not in_flight:
            continue
        if what == "kill a worker":
            killed = farm.kill_a_running_worker()
            if killed is None:
                continue  # none is building this second: try again
            events["killed"] = killed
        elif what == "restart the broker":
            farm.broker.restart()
        elif what == "restart s3":
            farm.restart_s3()
        else:
            farm.restart_api()
        log(f"soak: {what} at {done}/{total} builds done, {len(in_flight)} waiting")
        events["faults"].append((what, done))
        plan.pop(0)
    while not stop.wait(1):
        farm.sample()
    return events


def _plan(faults: tuple[str, ...]) -> list[tuple[float, str]]:
    """The faults in their order, spread over the first 80% of the builds (the last ones are
    still in flight when the last fault comes)."""
    return [(0.8 * (i + 1) / (len(faults) + 1), f) for i, f in enumerate(faults)]


def soak(builds: int, clients: int, workers: int, broker: str, deadline_s: float,
         faults: tuple[str, ...] = FAULTS, log=print) -> dict:
    """Run the soak; returns its report (see the module's docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="xbuild-soak-"))
    begin = time.monotonic()
    deadline = begin + deadline_s
    farm = Farm(tmp, workers, broker, log)
    results: dict[int, Build] = {}
    in_flight: set[int] = set()
    stop = threading.Event()
    events: dict = {}
    try:
        chaos_thread = threading.Thread(target=lambda: events.update(
            chaos(farm, _plan(faults), results, builds, in_flight, stop, log)), daemon=True)
        chaos_thread.start()
        numbers = list(range(builds))
        threads = [threading.Thread(target=client, args=(farm, numbers[c::clients], results, deadline, in_flight),
                                    daemon=True) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 5)
        stop.set()
        chaos_thread.join(120)
        runs, store_retries, waited = farm.attempts(), farm.store_retries(), farm.waited_out()
    finally:
        stop.set()
        farm.stop()
    killed_job = (events.get("killed") or {}).get("job")
    ok = [b for b in results.values() if not b.lost]
    return {
        "builds": builds, "clients": clients, "workers": workers, "broker": broker, "logs": str(tmp),
        "seconds": round(time.monotonic() - begin), "faults": events.get("faults", []),
        "killed": events.get("killed"), "killed_runs": runs.get(killed_job, 0) if killed_job else 0,
        "lost": builds - len(ok),
        "lost_builds": [(b.n, b.job_id, b.returncode, b.job.get("state"), b.stderr.strip().splitlines()[-1:])
                        for b in results.values() if b.lost] + [(n, None, None, "never run", [])
                                                                for n in range(builds) if n not in results],
        "twice": sorted(i for i, k in runs.items() if k > 1 and i != killed_job),
        "jobs_run": len(runs),  # more than builds: a retried submit made a second job
        "store_retries": store_retries, "workers_waited": waited,
        "retried": sorted(b.n for b in results.values() if "retrying:" in b.stderr),
        "latencies": sorted(b.seconds for b in ok),
        "peak_rss": dict(sorted(farm.peak.items())),
    }


def _p95(values: list[float]) -> float:
    return values[min(len(values) - 1, max(0, int(round(0.95 * len(values))) - 1))]


def print_report(r: dict) -> None:
    print(f"builds: {r['builds']} by {r['clients']} clients (xbuild submit --wait) on {r['workers']} workers "
          f"({r['broker']}, SeaweedFS), {r['seconds']} s in all; logs in {r['logs']}")
    print("faults: " + (", ".join(f"{what} at {done} done" for what, done in r["faults"]) or "none"))
    print(f"lost (a client exited non-zero, or its build did not succeed): {r['lost']}")
    for lost in r["lost_builds"]:
        print(f"  {lost}")
    killed = r["killed"]
    if killed:
        print(f"killed worker{killed['worker']} while it ran {killed['job']} (build container "
              f"{', '.join(c[:12] for c in killed['containers'])} up; state after the kill: "
              f"{killed['state_after']}, attempt {killed['attempts_after']}); that build ran "
              f"{r['killed_runs']} time(s)")
    else:
        print("no worker was killed")
    print(f"run twice (the killed one apart): {len(r['twice'])} {r['twice'] or ''}")
    print(f"jobs the workers ran: {r['jobs_run']} for {r['builds']} builds")
    print(f"built again within one attempt after a store error: {r['store_retries']}")
    waited = r["workers_waited"]
    print(f"the workers rode out: {waited['store']} store retries, {waited['lease']} lease retries, "
          f"{waited['broker reconnects']} broker reconnects")
    print(f"clients that said they were retrying: {len(r['retried'])}")
    lat = r["latencies"]
    if lat:
        print(f"submit-to-done latency (the client's wall time): p50 {statistics.median(lat):.1f} s, "
              f"p95 {_p95(lat):.1f} s, max {lat[-1]:.1f} s")
    for name, peak in r["peak_rss"].items():
        print(f"peak RSS {name}: {peak / 2**20:.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    parser.add_argument("--deadline", type=float, default=2400, help="seconds, everything included")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help="which faults, comma-separated, in their order; 'none' for none (default: all)")
    args = parser.parse_args()
    faults = tuple(f.strip() for f in args.faults.split(",") if f.strip() and f.strip() != "none")
    if unknown := [f for f in faults if f not in FAULTS]:
        parser.error(f"unknown fault(s) {unknown}: choose from {', '.join(FAULTS)}, or none")
    report = soak(args.builds, args.clients, args.workers, args.broker, args.deadline, faults,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    print_report(report)
    return 0 if report["lost"] == 0 and not report["twice"] else 1


if __name__ == "__main__":
    sys.exit(main())
