"""What the Firestore emulator's trigger delivery alone allows: the floor under on_feedback's latency on the local stack.

A second Firestore emulator, started as the stack starts its own, delivers the same trigger (feedback document
creations) to a receiver that does no work but take its time: answering at once (the emulator's own cost per
event), or after a fixed delay standing in for a handler's time. The same paced writes as ``bench ingest``'s
feedback row then show whether the emulator sends the next event before the previous one is answered
(it does not: the events of a delayed receiver arrive one delay apart), and so how long a handler may take
for the emulator to keep up with a given rate of reports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from edgeloop.bench_stack import paced_writes, percentile
from edgeloop.localstack.processes import free_port
from edgeloop.localstack.tools import find_tools
from edgeloop.localstack.wiring import FIRESTORE_TRIGGERS

PROJECT = "trigger-floor"
DOCUMENT = re.compile(rb"feedback/(floor-[0-9a-f]{12})")
START_TIMEOUT_S = 120.0


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, delay_s: float) -> None:
        self.delay_s = delay_s
        self.arrived: dict[str, float] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        super().__init__((host, free_port(host)), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.time()
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
        time.sleep(self.server.delay_s)
        match = DOCUMENT.search(body)
        with self.server.lock:
            self.server.in_flight -= 1
            if match:
                self.server.arrived.setdefault(match.group(1).decode(), arrived)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _emulator(host: str, receiver: _Receiver, log_file: Path) -> Iterator[firestore.Client]:
    """A Firestore emulator delivering on_feedback's trigger to ``receiver``; a client of it."""
    tools = find_tools()
    port = free_port(host)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [str(tools.java), "-Duser.language=en", "-cp", str(tools.firestore_jar),
             "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start", f"--host={host}", f"--port={port}",
             f"--functions_emulator={host}:{receiver.server_address[1]}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://{host}:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(url, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the second Firestore emulator did not start; see {log_file}")
            time.sleep(0.5)
        for function, (event_type, pattern) in FIRESTORE_TRIGGERS.items():
            resource = f"projects/{PROJECT}/databases/(default)/documents/{pattern}"
            requests.put(f"{url}/emulator/v1/projects/{PROJECT}/triggers/{function}", timeout=60, json={
                "eventTrigger": {"resource": resource, "eventType": event_type, "service": "firestore.googleapis.com"}},
            ).raise_for_status()
        saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = f"{host}:{port}"  # read once, as the client is made
        try:
            client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
        finally:
            if saved is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = saved
        yield client
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def measure(delays_s: tuple[float, ...], count: int, rate: float, writers: int, log_dir: Path,
            host: str = "127.0.0.1", timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """For each receiver delay: reports written at ``rate``, when each arrived, the spacing of arrivals and how
    many the emulator had in flight at once."""
    results = []
    for delay in delays_s:
        receiver = _Receiver(host, delay)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        try:
            with _emulator(host, receiver, log_dir / "trigger-floor-firestore.log") as db:
                written = paced_writes(db, count, rate, writers, lambda report: f"models/floor/feedback/{report}",
                                       lambda index: {"uid": f"floor-{index // 5}", "model_version": "v1",
                                                      "correct": True, "sent_at": firestore.SERVER_TIMESTAMP},
                                       prefix="floor")
                deadline = time.monotonic() + timeout_s
                while len(receiver.arrived.keys() & written.keys()) < len(written) and time.monotonic() < deadline:
                    time.sleep(0.2)
        finally:
            receiver.shutdown()
            receiver.server_close()
        arrived = {k: receiver.arrived[k] for k in written if k in receiver.arrived}
        latencies = [arrived[k] - written[k] for k in arrived]
        times = sorted(arrived.values())
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        results.append({
            "delay_ms": delay * 1000, "written": len(written), "arrived": len(arrived),
            "spacing_ms": span / (len(times) - 1) * 1000 if len(times) > 1 else float("nan"),
            "p50_s": percentile(latencies, 50) if latencies else float("nan"),
            "p95_s": percentile(latencies, 95) if latencies else float("nan"),
            "most_in_flight": receiver.most_in_flight})
    return results


def _receiver(delay_ms: float) -> str:
    return "answers at once" if delay_ms == 0 else f"answers after {delay_ms:.0f} ms"


SATURATING_DELAY_S = 0.040  # slower than a report every 29 ms: arrivals are then spaced by the emulator alone


def markdown(results: list[dict[str, Any]], rate: float) -> str:
    """The floor's table, and what it leaves a handler at ``rate`` reports per second. ``results``: an instant
    receiver first, then one taking the handler's time, then (last) one slower than the writes, whose arrivals
    are spaced by the emulator: what the emulator adds to each event is read from that one."""
    rows = "\n".join(
        f"| {_receiver(r['delay_ms'])} | {r['arrived']} of {r['written']} | {r['spacing_ms']:.1f} ms | "
        f"{r['most_in_flight']} | p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s |" for r in results)
    instant, handler, saturated = results[0], results[1], results[-1]
    own = saturated["spacing_ms"] - saturated["delay_ms"]  # what the emulator adds to each answered event
    budget = 1000 / rate - own
    keeps_up = handler["delay_ms"] <= budget
    return f"""The Firestore emulator's trigger delivery on its own, measured in the same run (edgeloop/bench_trigger_floor.py):
a second emulator delivering the same trigger to a receiver that does no work but take the time it is given,
{instant['written']} reports written at {rate:g}/s as above:

| receiver | events arrived | time between arrivals | most events in flight at once | write → arrival |
|---|---|---|---|---|
{rows}

The emulator never has more than one event in flight: it sends the next only once the previous one is answered,
and adds about {own:.0f} ms of its own to each (arrivals {saturated['spacing_ms']:.0f} ms apart for a receiver answering after
{saturated['delay_ms']:.0f} ms). At {rate:g} reports/s a report comes every {1000 / rate:.0f} ms, so on the local stack a function keeps
up only if it answers within about {budget:.0f} ms, every time; a receiver taking on_feedback's in-process handler time
({handler['delay_ms']:.0f} ms) and doing nothing else shows a p95 of {handler['p95_s']:.2f} s{
    "" if keeps_up else ": the handler alone is over that budget"}. Deployed, Eventarc delivers
events concurrently and this bound does not exist."""
