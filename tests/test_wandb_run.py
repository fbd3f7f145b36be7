"""W&B start-up and shutdown are bounded (trainbook.tracking.wandb_run), against a fake W&B server
on 127.0.0.1 that answers GET and holds every POST (no answer until the test ends): the failure
the hardening issue measured (39 s to start, 30 s lingering at exit, telemetry sent afterwards).

A worker process starts a tracker with a small start budget and prints wall-clock stamps; the server
records when each request arrives. Bounds are generous (this machine may be loaded): they catch a
start that waits for the server, or a process that does not exit, not a slow second.
"""

import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("wandb")

WORKER = Path(__file__).parent / "workers" / "wandb_start_worker.py"
BUDGET_S = 6.0
FAKE_KEY = "tbtestkey" + "q" * 31


class HoldingServer(http.server.ThreadingHTTPServer):
    """Answers GET with {}, holds POST until closed; answers the trainbook preflight when told to."""

    daemon_threads = True

    def __init__(self, answer_preflight: bool):
        super().__init__(("127.0.0.1", 0), HoldingHandler)
        self.answer_preflight, self.requests, self.release = answer_preflight, [], threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class HoldingHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body=b"{}"):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.requests.append((time.time(), "GET", self.path, self.headers.get("User-Agent")))
        self._answer()

    def do_POST(self):
        self.server.requests.append((time.time(), "POST", self.path, self.headers.get("User-Agent")))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.answer_preflight and self.headers.get("User-Agent") == "trainbook-preflight":
            return self._answer(b'{"data": {"__typename": "Query"}}')
        self.server.release.wait(300)


def run_worker(tmp_path, server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(HOME=str(tmp_path), WANDB_BASE_URL=server.url, WANDB_API_KEY=FAKE_KEY)
    proc = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "runs"), str(BUDGET_S)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process did not exit within 240 s:\n{out}\n{err[-2000:]}")
    exited = time.time()
    assert proc.returncode == 0, err[-3000:]
    stamps = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("STARTING", "STARTED", "FINISHED"):
            stamps[word] = float(rest.split()[0])
        elif word == "ATTEMPT":
            mode, t = rest.split()
            stamps[f"ATTEMPT {mode}"] = float(t)
    return out, err, stamps, exited


@pytest.fixture
def server(request):
    srv = HoldingServer(answer_preflight=request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize("server", [False], indirect=True, ids=["holds-every-post"])
def test_a_server_that_holds_post_sends_the_run_offline_within_the_budget_and_the_process_exits(server, tmp_path):
    out, err, stamps, exited = run_worker(tmp_path, server)
    assert "STARTED" in stamps and out.split("STARTED")[1].split()[1] == "offline"
    assert f"W&B: wandb_mode='auto' -> offline: API key from the WANDB_API_KEY environment variable, but " \
           f"{server.url}/graphql did not answer within 5 s" in out
    assert "ATTEMPT online" not in stamps  # the preflight caught it: wandb never talked to the server
    start_s, exit_s = stamps["STARTED"] - stamps["STARTING"], exited - stamps["FINISHED"]
    print(f"{out.split('STARTED')[1].split()[2:4]}: start {start_s:.1f}s, exit {exit_s:.1f}s after finish, requests {[r[1:] for r in server.requests]}")
    assert start_s < BUDGET_S + 30 and exit_s < 30
    late = [r for r in server.requests if r[0] > stamps["ATTEMPT offline"]]
    assert late == []  # nothing reached the server once offline was chosen
    assert [r[3] for r in server.requests] == ["trainbook-preflight"]


@pytest.mark.parametrize("server", [True], indirect=True, ids=["answers-only-the-preflight"])
def test_a_server_that_stalls_wandb_itself_is_abandoned_at_the_budget_and_stays_silent(server, tmp_path):
    out, err, stamps, exited = run_worker(tmp_path, server)
    assert out.split("STARTED")[1].split()[1] == "offline"
    assert f"W&B could not start an online run (no answer from the server within the {BUDGET_S:g} s start budget); " \
           "logging offline instead" in err
    start_s, exit_s = stamps["STARTED"] - stamps["STARTING"], exited - stamps["FINISHED"]
    print(f"{out.split('STARTED')[1].split()[2:4]}: start {start_s:.1f}s, exit {exit_s:.1f}s after finish, requests {[r[1:] for r in server.requests]}")
    assert stamps["ATTEMPT offline"] - stamps["ATTEMPT online"] < BUDGET_S + 20
    assert start_s < BUDGET_S + 30 and exit_s < 30
    assert any(r[3] != "trainbook-preflight" for r in server.requests)  # wandb did try the server
    late = [r for r in server.requests if r[0] > stamps["ATTEMPT offline"]]
    assert late == []
