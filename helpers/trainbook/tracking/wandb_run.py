"""The W&B tracker: which mode, which API key, and a run that never prompts nor stops training.

    tracker = make_wandb_tracker(cfg, run_dir)   # None when W&B is off; MetricsTracker.for_run calls it

W&B modes (TrainingConfig.wandb_mode):

- disabled: nothing written, wandb not imported.
- offline:  the run is written under <run_dir>/wandb/; `wandb sync <folder>` uploads it later.
- online:   needs an API key (WANDB_API_KEY, a Colab secret of that name, or netrc).
- auto:     WANDB_MODE when set; else online when a key is found, otherwise offline.

W&B never stops training, and never holds up its start or its end: starting (one preflight request,
then wandb.init) has START_BUDGET_S in all, after which the run goes offline with one line; an
online start that failed is torn down (its wandb-core service killed if it does not stop) so no
request reaches the network once offline was chosen; wandb's own telemetry is off
(WANDB_ERROR_REPORTING=false unless set); run.finish waits at most FINISH_TIMEOUT_S for uploads
(the data stays on disk for `wandb sync`). A failure while logging becomes one warning and the
local log goes on. The API key is handed to wandb in memory only; it is never printed nor written
into the run folder. wandb itself is imported only when a run starts (_import_wandb).
"""

from __future__ import annotations

import netrc
import os
import shlex
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

WANDB_KEY_NAME = "WANDB_API_KEY"     # env var and Colab secret name
WANDB_HOSTS = ("api.wandb.ai", "api.forge.coreweave.com")   # netrc machines of the W&B cloud
START_BUDGET_S = 20.0                # W&B start-up in all (preflight + wandb.init); then the run goes offline
PREFLIGHT_TIMEOUT_S = 5.0            # online: one request to the server first; no answer -> offline
OFFLINE_INIT_TIMEOUT_S = 60.0        # an offline wandb.init only starts the local service
FINISH_TIMEOUT_S = 30.0              # run.finish stops waiting for uploads; data stays on disk
STOP_TIMEOUT_S = 5.0                 # tearing down a failed online start; then its service is killed
PREFLIGHT_AGENT = "trainbook-preflight"  # User-Agent of the preflight request


# ---------------------------------------------------------------------------- W&B: which mode, which key

def _in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def find_wandb_api_key() -> tuple[str | None, str]:
    """Look for a W&B API key without prompting: WANDB_API_KEY, the Colab secret, netrc.

    Returns:
        (key, source) when found, source naming where (never the key); else (None, why not).
    """
    if os.environ.get(WANDB_KEY_NAME):
        return os.environ[WANDB_KEY_NAME], f"the {WANDB_KEY_NAME} environment variable"
    misses = [f"{WANDB_KEY_NAME} is not set"]
    if _in_colab():
        key, note = _colab_secret(WANDB_KEY_NAME)
        if key:
            return key, note
        misses.append(note)
    key, note = _netrc_key()
    if key:
        return key, note
    return None, "; ".join(misses + [note])


def _colab_secret(name: str) -> tuple[str | None, str]:
    try:
        from google.colab import userdata
    except ImportError as e:
        return None, f"google.colab.userdata is not importable ({e})"
    try:
        value = userdata.get(name)
    except Exception as e:  # SecretNotFoundError, NotebookAccessError, ...: reported as the reason
        hint = " (grant this notebook access in the key panel)" if "Access" in type(e).__name__ else ""
        return None, f"Colab secret {name} not readable: {type(e).__name__}{hint}"
    return (value, f"the Colab secret {name}") if value else (None, f"Colab secret {name} is empty")


def _netrc_key() -> tuple[str | None, str]:
    path = Path(os.environ["NETRC"]).expanduser() if os.environ.get("NETRC") else Path("~/.netrc").expanduser()
    base_url = os.environ.get("WANDB_BASE_URL")
    hosts = (urlsplit(base_url).hostname,) if base_url else WANDB_HOSTS
    if not path.is_file():
        return None, f"no netrc file at {path}"
    try:
        entries = netrc.netrc(path)
    except (netrc.NetrcParseError, OSError) as e:
        return None, f"netrc file {path} is unreadable ({type(e).__name__} at line {getattr(e, 'lineno', '?')})"
    for host in hosts:  # .hosts, not .authenticators(): a `default` entry is not a W&B key
        if host in entries.hosts and entries.hosts[host][2]:
            return entries.hosts[host][2], f"the {host} entry in {path}"
    return None, f"no {' or '.join(hosts)} entry in {path}"


def resolve_wandb_mode(requested: str) -> tuple[str, str | None, str]:
    """Turn cfg.wandb_mode into the mode to run, the API key to use and a one-line reason.

    Args:
        requested: 'auto', 'online', 'offline' or 'disabled'.

    Returns:
        (mode, key, reason): mode is 'online', 'offline' or 'disabled'; key is None unless online.

    Raises:
        ConfigError: 'online' (asked directly or through WANDB_MODE) and no key is available.
    """
    reason = f"wandb_mode={requested!r}"
    if requested == "auto" and os.environ.get("WANDB_MODE"):
        env_mode = {"dryrun": "offline", "run": "online"}.get(os.environ["WANDB_MODE"], os.environ["WANDB_MODE"])
        if env_mode in ("online", "offline", "disabled"):
            requested, reason = env_mode, f"WANDB_MODE={os.environ['WANDB_MODE']} is set"
    if requested in ("offline", "disabled"):
        return requested, None, reason
    key, source = find_wandb_api_key()
    if key:
        return "online", key, f"API key from {source}"
    if requested == "online":
        from ..config import ConfigError

        raise ConfigError([f"{reason}: W&B online needs an API key and none was found ({source})",
                           "HINT: set the WANDB_API_KEY environment variable, add a Colab secret named "
                           "WANDB_API_KEY, or run `wandb login` once; or use wandb_mode='auto' or 'offline'"])
    return "offline", None, f"no W&B API key ({source})"


# ---------------------------------------------------------------------------- W&B: the tracker

class WandbTracker:
    """Logs to one W&B run; any W&B error becomes one warning and W&B is off from then on.

    The W&B step is the optimizer step. The Trainer logs the epoch row at the step of the
    epoch's last optimizer step; W&B merges rows logged at the same step into one.
    """

    def __init__(self, run, mode: str, reason: str, key: str | None = None):
        self.run, self._key = run, key
        self.folder = Path(getattr(run.settings, "sync_dir", None) or Path(run.dir).parent)
        self.url = run.url if mode == "online" else None
        self.failed: str | None = None
        self.info = {"wandb_mode": mode, "wandb_reason": reason, "wandb_dir": str(self.folder),
                     "wandb_url": self.url, "wandb_run_id": run.id, "wandb_error": None,
                     "wandb_sync_command": f"wandb sync {shlex.quote(str(self.folder))}" if mode == "offline" else None}

    def log_config(self, config: dict):
        self._call("config update", self.run.config.update, config, allow_val_change=True)

    def log(self, metrics: dict, step: int):
        self._call("log", self.run.log, metrics, step=step)

    def log_summary(self, summary: dict):
        self._call("summary update", self.run.summary.update, summary)

    def finish(self):
        if self.run is None:
            return
        run, self.run = self.run, None
        try:
            if not _bounded(lambda: run.finish(exit_code=1 if self.failed else 0), FINISH_TIMEOUT_S + STOP_TIMEOUT_S):
                kill_wandb_service()  # a wandb without finish_timeout, or one that ignores it
                raise TimeoutError(f"run.finish did not return within {FINISH_TIMEOUT_S + STOP_TIMEOUT_S:g} s; "
                                   f"the run's data is in {self.folder}")
        except Exception as e:  # noqa: BLE001 - W&B must not fail the training run
            if self.failed is None:
                self._warn("finish", e)
            else:  # already warned once for this run; keep the follow-up error in info
                self.info["wandb_error"] += "; finish: " + _redact(f"{type(e).__name__}: {e}", self._key)

    def _call(self, what: str, fn, *args, **kwargs):
        if self.run is None or self.failed is not None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - W&B must not stop training: one warning, local log goes on
            self._warn(what, e)

    def _warn(self, what: str, error: Exception):
        self.failed = self.info["wandb_error"] = _redact(f"{type(error).__name__}: {error}", self._key)
        warnings.warn(f"W&B {what} failed ({self.failed}); W&B logging is off for the rest of this run, "
                      f"metrics.jsonl in the run folder is complete", RuntimeWarning, stacklevel=4)


def _redact(text: str, key: str | None) -> str:
    return text.replace(key, "<WANDB_API_KEY>") if key else text


def _import_wandb(mode: str):
    try:
        import wandb
    except ImportError as e:
        raise ImportError(f"wandb_mode={mode!r} needs the wandb package, which is not installed. "
                          "HINT: pip install wandb, or set wandb_mode='disabled'") from e
    return wandb


def _server_problem(wandb, timeout: float) -> str | None:
    """Why the W&B server cannot take a run right now (one quick POST, no key sent), or None.

    wandb.init does not bound every wait before the run starts (0.28 retries its first request
    for minutes), so an unreachable, failing or silent server is caught here instead. The request
    is a POST, like wandb's own: a server that answers GET but holds POST is caught too.
    """
    import socket
    import urllib.error
    import urllib.request

    url = (os.environ.get("WANDB_BASE_URL") or wandb.setup().settings.base_url).rstrip("/") + "/graphql"
    request = urllib.request.Request(url, data=b'{"query": "{ __typename }"}', method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": PREFLIGHT_AGENT})
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError as e:  # any HTTP answer below 500 means the server is there
        return f"{url} answers HTTP {e.code}" if e.code >= 500 else None
    except (TimeoutError, socket.timeout):
        return f"{url} did not answer within {timeout:.3g} s"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"{url} did not answer within {timeout:.3g} s"
        return f"{url} is unreachable ({reason})"
    return None


def _start_run(wandb, cfg, run_dir: Path, mode: str, key: str | None, init_timeout: float):
    """wandb.init that cannot prompt: explicit mode and key, bounded init and finish waits."""
    wanted = dict(mode=mode, api_key=key, silent=True, console="off", init_timeout=init_timeout,
                  finish_timeout=FINISH_TIMEOUT_S, reinit="create_new")
    known = getattr(wandb.Settings, "model_fields", wanted)
    settings = wandb.Settings(**{k: v for k, v in wanted.items() if k in known and v is not None})
    return wandb.init(project=cfg.wandb_project, entity=cfg.wandb_entity or None, name=cfg.run_name,
                      dir=str(run_dir), settings=settings)


def _remaining(deadline: float, cap: float = float("inf")) -> float:
    return max(1.0, min(cap, deadline - time.monotonic()))


def _bounded(fn, timeout: float) -> bool:
    """Run fn in a daemon thread for at most `timeout` seconds; True when it returned. Its error is re-raised."""
    errors = []

    def call():
        try:
            fn()
        except BaseException as e:  # handed to the caller's thread below
            errors.append(e)

    worker = threading.Thread(target=call, name="trainbook-wandb", daemon=True)
    worker.start()
    worker.join(timeout)
    if errors:
        raise errors[0]
    return not worker.is_alive()


def stop_wandb_service(wandb) -> None:
    """After a failed online start: tear W&B down (bounded) and kill its service if it hangs on.

    wandb.init that timed out leaves its stream in the wandb-core service, retrying the server
    and holding the process at exit (wandb 0.28 waits for it indefinitely). Tearing down ends it;
    when the teardown itself waits on the server, the service process is killed.
    """
    try:
        stopped = _bounded(wandb.teardown, STOP_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - a broken teardown: the service is killed below either way
        warnings.warn(f"W&B teardown failed ({type(e).__name__}: {e}); stopping its service", RuntimeWarning,
                      stacklevel=3)
        stopped = False
    if not stopped:
        kill_wandb_service()


def kill_wandb_service() -> int:
    """SIGKILL the wandb-core processes this process started (Linux /proc); returns how many."""
    killed, me = 0, os.getpid()
    if not os.path.isdir("/proc"):
        return 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, rest = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        if name.startswith("wandb-core") and int(rest[1]) == me:
            os.kill(int(entry), signal.SIGKILL)
            killed += 1
    return killed


def make_wandb_tracker(cfg, run_dir: Path) -> WandbTracker | None:
    """The W&B tracker for cfg.wandb_mode, or None when W&B is off for this run.

    Prints one line for the mode 'auto' chose and why, then the run URL, or the offline folder
    and its `wandb sync` command. An online run that cannot start falls back to offline with
    one warning (under 'auto': the one line says why).

    Args:
        cfg: the TrainingConfig.
        run_dir: the run folder; W&B writes under run_dir/wandb/.

    Returns:
        A WandbTracker, or None (disabled, wandb missing under 'auto', or W&B failed to start).

    Raises:
        ImportError: 'online' or 'offline' asked for and wandb is not installed.
        ConfigError: 'online' asked for and no API key is available.
    """
    mode, key, reason = resolve_wandb_mode(cfg.wandb_mode)
    if mode == "disabled":
        print(f"W&B: wandb_mode={cfg.wandb_mode!r} -> disabled: {reason}")
        return None
    try:
        wandb = _import_wandb(mode)
    except ImportError:
        if cfg.wandb_mode != "auto":
            raise
        print("W&B: wandb_mode='auto' -> disabled: the wandb package is not installed (pip install wandb)")
        return None
    deadline = time.monotonic() + START_BUDGET_S
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # wandb's telemetry would reach the network
    if mode == "online" and (problem := _server_problem(wandb, _remaining(deadline, PREFLIGHT_TIMEOUT_S))):
        mode, key, reason = "offline", None, f"{reason}, but {problem}"
        if cfg.wandb_mode != "auto":
            warnings.warn(f"W&B: {problem}; logging offline instead", RuntimeWarning, stacklevel=3)
    if cfg.wandb_mode == "auto":
        print(f"W&B: wandb_mode='auto' -> {mode}: {reason}")
    for attempt in ([mode, "offline"] if mode == "online" else [mode]):
        online = attempt == "online"
        try:
            run = _start_run(wandb, cfg, run_dir, attempt, key if online else None,
                             _remaining(deadline) if online else OFFLINE_INIT_TIMEOUT_S)
            break
        except Exception as e:  # noqa: BLE001 - W&B must not stop training: warn, fall back
            what = _redact(f"{type(e).__name__}: {e}", key)
            if online and time.monotonic() >= deadline - 1.0:
                what = f"no answer from the server within the {START_BUDGET_S:g} s start budget"
            if online:
                stop_wandb_service(wandb)  # nothing from the failed attempt reaches the network any more
            then = "logging offline instead" if online else "metrics go to metrics.jsonl only"
            warnings.warn(f"W&B could not start an {attempt} run ({what}); {then}", RuntimeWarning, stacklevel=3)
            reason = f"the online run did not start ({what})"
    else:
        return None
    tracker = WandbTracker(run, attempt, reason, key)
    if attempt == "online":
        print(f"W&B: run {tracker.url}")
    else:
        print(f"W&B: offline run in {tracker.folder}; upload it later with: {tracker.info['wandb_sync_command']}")
    return tracker
