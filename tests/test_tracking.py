"""Tests for trainbook.tracking (+ tracking.wandb_run): JSONL always, W&B modes, one row per optimizer step, no hangs.

W&B runs are real wandb offline runs; anything that tries the network fails locally (the base
URL points at a closed localhost port and Python-level lookups of other hosts are refused and
recorded), so no test contacts the network.
"""

import contextlib
import io
import json
import math
import socket
import struct
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest

import trainbook as tb
from trainbook.tracking import wandb_run as wandb_tracking
from trainbook.config import ConfigError
from trainbook.tracking import JSONLTracker, MetricsTracker, read_metrics
from trainbook.tracking import resolve_wandb_mode

wandb = pytest.importorskip("wandb")

FAKE_KEY = "tbtestkey" + "q" * 31          # 40 characters: passes wandb's format check
NETWORK_ATTEMPTS = []                     # hosts someone tried to reach during this module
LOCAL_HOSTS = {None, "localhost", "127.0.0.1", "::1", ""}


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def offline_world(tmp_path_factory):
    """No key, no netrc, no Colab; the network refused; a fresh wandb session for this module."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL_HOSTS:
            NETWORK_ATTEMPTS.append(host)
            raise OSError(f"test_tracking: network lookup of {host!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            NETWORK_ATTEMPTS.append(address[0])
            raise OSError(f"test_tracking: connection to {address!r} refused")
        return real_connect(sock, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
        mp.setenv("WANDB_ERROR_REPORTING", "")  # recorded so the module restores it; the tracker sets it
        for name in ("WANDB_ERROR_REPORTING", "WANDB_API_KEY", "NETRC", "WANDB_MODE", "WANDB_DIR",
                     "COLAB_RELEASE_TAG"):
            mp.delenv(name, raising=False)
        mp.delitem(sys.modules, "google.colab", raising=False)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setattr(socket.socket, "connect", connect)
        wandb.teardown()
        yield
        wandb.teardown()


@pytest.fixture(scope="module")
def vision():
    return tb.load_task_data("vision-cls", limit=64)


def train(out_dir, data, epochs=1, resume="never", **overrides):
    """One real Trainer run on a tiny vision model; returns (result, printed text)."""
    cfg = tb.TrainingConfig(output_dir=str(out_dir), epochs=epochs, batch_size=8, progress_bar=False,
                            resume=resume, **overrides)
    model = tb.build_model(data.spec, "tiny")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = tb.Trainer(model, training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    return result, printed.getvalue()


@pytest.fixture(scope="module", params=[1, 4], ids=["accumulation1", "accumulation4"])
def offline_run(request, vision, tmp_path_factory):
    """Two epochs in wandb offline mode; shared by the tests that read it back."""
    result, printed = train(tmp_path_factory.mktemp("offline"), vision, epochs=2, wandb_mode="offline",
                            gradient_accumulation_steps=request.param)
    micro_batches = math.ceil(len(vision.train) / 8)
    steps_per_epoch = math.ceil(micro_batches / request.param)
    return types.SimpleNamespace(result=result, printed=printed, folder=Path(result.tracking["wandb_dir"]),
                                 accumulation=request.param, micro_batches_per_epoch=micro_batches,
                                 steps_per_epoch=steps_per_epoch)


def wandb_records(folder: Path) -> dict[str, list]:
    """Records of an offline run's transaction log (run-<id>.wandb), grouped by type.

    The file is a ':W&B' header (7 bytes) then the LevelDB log format: 32 KiB blocks of chunks,
    each with a 7-byte header (crc32c, length uint16, type: 1 full, 2 first, 3 middle, 4 last)
    holding serialized wandb.proto Record messages. Read the same way for wandb 0.28 and 0.31.
    """
    from wandb.proto import wandb_internal_pb2

    data = next(folder.glob("run-*.wandb")).read_bytes()
    assert data[:4] in (b":W&B", b""), f"not a W&B transaction log: {data[:7]!r}"
    block, pos, pending, records = 32768, 7, b"", {}
    while pos + 7 <= len(data):
        room = block - pos % block
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7]) if room >= 7 else (0, 0)
        if kind == 0:  # block trailer / zero padding
            pos += room
            continue
        if pos + 7 + length > len(data):  # wandb-core is still writing this chunk
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.setdefault(record.WhichOneof("record_type"), []).append(record)
    return records


def finished_records(folder: Path, timeout_s: float = 20.0) -> dict[str, list]:
    """The run's records once its exit record is on disk (wandb-core may still be writing after finish)."""
    deadline = time.monotonic() + timeout_s
    while "exit" not in (records := wandb_records(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "exit" in records, f"no exit record in {folder} after {timeout_s}s"
    return records


def history_rows(folder: Path) -> list[dict]:
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in finished_records(folder).get("history", [])]


def files_containing(root: Path, text: str) -> list[str]:
    return [str(p) for p in Path(root).rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


# ---------------------------------------------------------------------------- offline runs with the real Trainer

def test_offline_run_folder_is_inside_the_run_dir_and_sync_command_printed_once(offline_run):
    info, folder = offline_run.result.tracking, offline_run.folder
    assert info["wandb_mode"] == "offline" and info["wandb_url"] is None
    assert folder.parent == Path(offline_run.result.run_dir) / "wandb"
    assert folder.name.startswith("offline-run-") and folder.name.endswith(info["wandb_run_id"])
    assert (folder / f"run-{info['wandb_run_id']}.wandb").is_file()
    assert info["wandb_sync_command"] == f"wandb sync {folder}"
    assert offline_run.printed.count("wandb sync") == 1
    assert f"upload it later with: wandb sync {folder}" in offline_run.printed


def test_wandb_history_has_one_row_per_optimizer_step_not_per_micro_batch(offline_run):
    rows = history_rows(offline_run.folder)
    total = offline_run.result.total_steps
    assert total == 2 * offline_run.steps_per_epoch
    assert [r["_step"] for r in rows] == list(range(1, total + 1))
    if offline_run.accumulation > 1:
        assert len(rows) < 2 * offline_run.micro_batches_per_epoch


def test_wandb_rows_match_the_local_log_and_epoch_rows_share_the_last_step(offline_run):
    local = read_metrics(offline_run.result.run_dir)
    steps = [r for r in local if "train/loss" in r]
    assert [r["step"] for r in steps] == list(range(1, offline_run.result.total_steps + 1))
    rows = history_rows(offline_run.folder)
    assert [r["train/loss"] for r in rows] == pytest.approx([r["train/loss"] for r in steps], rel=1e-12)
    epoch_steps = [r["_step"] for r in rows if "epoch/val_loss" in r]
    assert epoch_steps == [offline_run.steps_per_epoch, 2 * offline_run.steps_per_epoch]
    history = offline_run.result.history
    assert [r["epoch/val_loss"] for r in rows if "epoch/val_loss" in r] == pytest.approx(
        [h["val_loss"] for h in history], rel=1e-12)


def test_wandb_gets_the_config_once_and_the_final_summary(offline_run):
    records = finished_records(offline_run.folder)
    config_keys = {item.key for r in records.get("config", []) for item in r.config.update}
    assert {"learning_rate", "gradient_accumulation_steps", "wandb_mode"} <= config_keys
    summary = {item.key: json.loads(item.value_json) for r in records["summary"] for item in r.summary.update}
    assert summary["total_steps"] == offline_run.result.total_steps
    assert summary["parameters"] > 0 and summary["wall_time_s"] > 0
    assert records["exit"][0].exit.exit_code == 0


def test_local_jsonl_has_step_rows_then_one_epoch_row_per_epoch(offline_run):
    rows = read_metrics(offline_run.result.run_dir)
    epoch_rows = [r for r in rows if "epoch/epoch" in r]
    assert [r["epoch/epoch"] for r in epoch_rows] == [1, 2]
    assert len(rows) == offline_run.result.total_steps + 2


# ---------------------------------------------------------------------------- failures never stop training

def test_wandb_failure_mid_run_gives_one_warning_and_the_local_log_completes(tmp_path, vision, monkeypatch):
    real_log, calls = wandb.sdk.wandb_run.Run.log, []

    def flaky_log(self, *args, **kwargs):
        calls.append(kwargs.get("step"))
        if len(calls) == 3:
            raise ConnectionError("network is gone")
        return real_log(self, *args, **kwargs)

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", flaky_log)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, _ = train(tmp_path, vision, wandb_mode="offline")
    ours = [str(w.message) for w in caught if "W&B" in str(w.message)]
    assert len(ours) == 1 and "ConnectionError: network is gone" in ours[0], ours
    assert calls == [1, 2, 3]  # W&B is not called again after the failure
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, result.total_steps + 1))
    assert len([r for r in rows if "epoch/epoch" in r]) == 1
    assert "ConnectionError" in result.tracking["wandb_error"]


def run_tracker(cfg):
    """for_run + one row + finish, collecting W&B warnings; returns (tracker, warning texts)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker = MetricsTracker.for_run(cfg, cfg.run_dir)
        tracker.log_config(cfg.to_dict())
        tracker.log({"train/loss": 1.5}, step=1)
        tracker.log_summary({"best_metric": 1.5})
        tracker.finish()
    return tracker, [str(w.message) for w in caught if "W&B" in str(w.message)]


def test_auto_with_a_key_but_no_server_goes_offline_with_one_line_and_no_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    tried = []
    monkeypatch.setattr(wandb_tracking, "_start_run",
                        lambda *a, real=wandb_tracking._start_run: tried.append(a[3]) or real(*a))
    tracker, ours = run_tracker(tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="auto"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("W&B: wandb_mode")]
    assert ours == [] and tried == ["offline"]
    assert len(lines) == 1 and lines[0].startswith(
        "W&B: wandb_mode='auto' -> offline: API key from the WANDB_API_KEY environment variable, "
        "but http://127.0.0.1:9/graphql is unreachable (") and "Connection refused" in lines[0]
    assert tracker.info["wandb_mode"] == "offline"
    assert [r["_step"] for r in history_rows(Path(tracker.info["wandb_dir"]))] == [1]


def test_online_with_no_server_warns_once_and_logs_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    tracker, ours = run_tracker(tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="online"))
    assert len(ours) == 1 and ours[0].startswith("W&B: http://127.0.0.1:9/graphql is unreachable (")
    assert ours[0].endswith("Connection refused); logging offline instead")
    assert tracker.info["wandb_mode"] == "offline" and tracker.info["wandb_url"] is None


def test_online_start_failure_falls_back_offline_and_never_leaks_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setattr(wandb_tracking, "_server_problem", lambda wandb, timeout: None)
    real_init = wandb.init

    def init(*args, settings, **kwargs):
        if settings.mode == "online":
            assert settings.api_key == FAKE_KEY and 1 <= settings.init_timeout <= wandb_tracking.START_BUDGET_S
            raise wandb.errors.CommError(f"401 unauthorized for key {FAKE_KEY}")
        return real_init(*args, settings=settings, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    tracker, ours = run_tracker(tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="auto"))
    printed = capsys.readouterr()
    assert ours == ["W&B could not start an online run (CommError: 401 unauthorized for key <WANDB_API_KEY>); "
                    "logging offline instead"]
    assert tracker.info["wandb_mode"] == "offline"
    assert [r["_step"] for r in history_rows(Path(tracker.info["wandb_dir"]))] == [1]
    assert FAKE_KEY not in printed.out + printed.err + json.dumps(tracker.info)
    assert files_containing(tmp_path, FAKE_KEY) == []


# ---------------------------------------------------------------------------- choosing the mode

def test_auto_without_a_key_goes_offline_with_one_line_saying_why(tmp_path, capsys):
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="auto")
    tracker = MetricsTracker.for_run(cfg, cfg.run_dir)
    tracker.finish()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("W&B: wandb_mode")]
    netrc_path = Path("~/.netrc").expanduser()
    assert lines == [f"W&B: wandb_mode='auto' -> offline: no W&B API key (WANDB_API_KEY is not set; "
                     f"no netrc file at {netrc_path})"]
    assert tracker.info["wandb_mode"] == "offline" and Path(tracker.info["wandb_dir"]).is_dir()


def test_auto_uses_the_key_from_the_environment_without_revealing_it(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    mode, key, reason = resolve_wandb_mode("auto")
    assert (mode, key) == ("online", FAKE_KEY)
    assert reason == "API key from the WANDB_API_KEY environment variable"


@pytest.mark.parametrize("machine, expected", [("api.wandb.ai", "online"), ("example.com", "offline")])
def test_auto_reads_a_netrc_entry_for_the_wandb_host(tmp_path, monkeypatch, machine, expected):
    monkeypatch.delenv("WANDB_BASE_URL")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".netrc").write_text(f"machine {machine}\n  login user\n  password {FAKE_KEY}\n"
                                     "default login anonymous password someone@example.com\n")
    mode, key, reason = resolve_wandb_mode("auto")
    assert mode == expected
    if expected == "online":
        assert key == FAKE_KEY and reason == f"API key from the api.wandb.ai entry in {tmp_path / '.netrc'}"
    else:
        assert key is None and "no api.wandb.ai or api.forge.coreweave.com entry" in reason


def fake_colab(monkeypatch, get):
    userdata = types.SimpleNamespace(get=get)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(userdata=userdata))
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def test_auto_reads_the_colab_secret_inside_colab(monkeypatch):
    asked = []
    fake_colab(monkeypatch, lambda name: asked.append(name) or FAKE_KEY)
    assert resolve_wandb_mode("auto") == ("online", FAKE_KEY, "API key from the Colab secret WANDB_API_KEY")
    assert asked == ["WANDB_API_KEY"]


def test_auto_in_colab_without_the_secret_goes_offline_and_says_why(monkeypatch):
    class SecretNotFoundError(Exception):
        pass

    def missing(name):
        raise SecretNotFoundError(f"Secret {name} does not exist.")

    fake_colab(monkeypatch, missing)
    mode, key, reason = resolve_wandb_mode("auto")
    assert (mode, key) == ("offline", None)
    assert "Colab secret WANDB_API_KEY not readable: SecretNotFoundError" in reason


def test_colab_secrets_are_not_read_outside_colab(monkeypatch):
    def never(name):
        raise AssertionError("userdata.get called outside Colab")

    monkeypatch.setitem(sys.modules, "google.colab.userdata", types.SimpleNamespace(get=never))
    assert not wandb_tracking._in_colab()
    assert resolve_wandb_mode("auto")[0] == "offline"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert wandb_tracking._in_colab()


def test_wandb_mode_env_var_steers_auto_but_not_an_explicit_mode(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == ("disabled", None, "WANDB_MODE=disabled is set")
    assert resolve_wandb_mode("offline")[0] == "offline"


def test_online_without_a_key_fails_before_training_with_a_hint(tmp_path):
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="online")
    with pytest.raises(ConfigError, match="wandb_mode='online': W&B online needs an API key") as err:
        MetricsTracker.for_run(cfg, cfg.run_dir)
    assert "HINT: set the WANDB_API_KEY environment variable, add a Colab secret" in str(err.value)
    assert not (cfg.run_dir / "wandb").exists()


def test_missing_wandb_package_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="offline")
    with pytest.raises(ImportError, match="wandb_mode='offline' needs the wandb package.*pip install wandb"):
        MetricsTracker.for_run(cfg, cfg.run_dir)
    auto = MetricsTracker.for_run(tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="auto"), cfg.run_dir)
    assert auto.info["wandb_mode"] == "disabled"
    assert "wandb_mode='auto' -> disabled: the wandb package is not installed (pip install wandb)" in \
        capsys.readouterr().out


# ---------------------------------------------------------------------------- disabled, local log

def test_disabled_writes_no_wandb_folder(tmp_path, vision):
    result, printed = train(tmp_path, vision, wandb_mode="disabled")
    assert not (Path(result.run_dir) / "wandb").exists()
    assert result.tracking["wandb_mode"] == "disabled" and result.tracking["wandb_dir"] is None
    assert "W&B" not in printed
    assert len([r for r in read_metrics(result.run_dir) if "train/loss" in r]) == result.total_steps


def test_disabled_never_imports_wandb(tmp_path):
    code = ("import sys; from trainbook.config import TrainingConfig; from trainbook.tracking import MetricsTracker\n"
            f"cfg = TrainingConfig(output_dir={str(tmp_path)!r}, wandb_mode='disabled')\n"
            "t = MetricsTracker.for_run(cfg, cfg.run_dir); t.log({'train/loss': 1.0}, step=1); t.finish()\n"
            "print('wandb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_jsonl_resume_drops_rows_after_the_checkpoint_step(tmp_path):
    log = JSONLTracker(tmp_path)
    for step in range(1, 6):
        log.log({"train/loss": float(step)}, step=step)
    log.log({"train/loss": float("nan")}, step=6)
    log.finish()
    assert read_metrics(tmp_path)[-1]["train/loss"] == "nan"
    JSONLTracker(tmp_path, resume_step=3).finish()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_a_resumed_run_starts_a_new_wandb_run_that_continues_at_the_next_step(tmp_path, vision):
    first, _ = train(tmp_path, vision, wandb_mode="offline", resume="never")
    second, _ = train(tmp_path, vision, epochs=2, wandb_mode="offline", resume="auto")
    assert second.resumed_from is not None
    assert second.tracking["wandb_dir"] != first.tracking["wandb_dir"]
    steps = [r["_step"] for r in history_rows(Path(second.tracking["wandb_dir"]))]
    assert steps == list(range(first.total_steps + 1, second.total_steps + 1))
    local = [r["step"] for r in read_metrics(second.run_dir) if "train/loss" in r]
    assert local == list(range(1, second.total_steps + 1))


def test_no_test_in_this_module_reached_the_network():
    assert NETWORK_ATTEMPTS == []
