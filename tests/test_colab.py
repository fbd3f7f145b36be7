"""The notebook's Colab path, executed: a simulated Colab runtime installs trainbook from a git ref.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_colab.py   # make test-colab adds Colab's versions

Each run gets a throwaway virtual environment that sees a base environment's packages (.venv, or
.venv-colab built by tests/colab_env.sh with Colab's pinned stack) EXCEPT trainbook, a kernel with
the google.colab stub (tests/colab_stub) on its path, and a local git clone of this checkout whose
current helpers/ is committed and tagged v<version>. The notebook's own setup cell must then
`%pip install "trainbook @ git+file://<clone>@v<version>#subdirectory=helpers"`, exactly as in Colab.
A unique fake W&B key is planted as the Colab secret WANDB_API_KEY and searched for in every file
the run wrote and everything it printed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "training.ipynb"
STUB_PATH = ROOT / "tests" / "colab_stub"
COLAB_PINS = ROOT / "tests" / "colab_requirements.txt"
COLAB_VENV_ENV = "TRAINBOOK_COLAB_VENV"   # set by `make test-colab` to .venv-colab
KERNEL_NAME = "colab-sim"
# Shorter than the 40 characters W&B accepts, so wandb rejects its format before any network call:
# the online attempt fails at once and tracking falls back to offline (its Colab-without-network path).
FAKE_KEY = "tbfake" + uuid.uuid4().hex
# export_model stays on so the key search covers the bundle too (a tiny model exports in well under a second)
SMALL_RUN = {"task": "lm", "data_limit": 200, "model_size": "tiny", "epochs": 1, "batch_size": 16,
             "wandb_mode": "auto", "run_hp_search": False, "export_model": True,
             "run_name": "colab-sim", "output_dir": "runs"}
NOTEBOOK_TIMEOUT_S = 600


def trainbook_version() -> str:
    text = (ROOT / "helpers" / "trainbook" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def git(*args, cwd: Path) -> str:
    out = subprocess.run(["git", "-c", "user.name=trainbook tests", "-c", "user.email=tests@trainbook.invalid",
                          "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
                         cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def tagged_repo(tmp_path_factory) -> Path:
    """A git clone of this checkout with the working tree's helpers/ committed, tagged v<version> and v9.9.9."""
    repo = tmp_path_factory.mktemp("origin") / "trainbook"
    git("clone", "-q", str(ROOT), str(repo), cwd=ROOT)
    shutil.rmtree(repo / "helpers")
    shutil.copytree(ROOT / "helpers", repo / "helpers",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build", "dist"))
    git("add", "-A", "helpers", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "helpers/ as in the working tree under test", cwd=repo)
    git("tag", f"v{trainbook_version()}", cwd=repo)
    git("tag", "v9.9.9", cwd=repo)   # same commit, so trainbook.__version__ differs from the ref's
    return repo


@pytest.fixture(scope="module")
def pip_cache(tmp_path_factory) -> Path:
    """One pip cache for the module's runs, so the build backend is fetched once."""
    return tmp_path_factory.mktemp("pip-cache")


def repo_url(repo: Path) -> str:
    """file://localhost/<path>: pip < 23.3 rejects "name @ git+file:///<path>" (a URL with no host)."""
    return f"file://localhost{repo}"


def purelib(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip())


def make_kernel_venv(base_python: Path, root: Path) -> tuple[Path, Path]:
    """A venv that sees base_python's site-packages, minus trainbook, through a folder of symlinks.

    The base's .pth files (trainbook's editable-install finder among them) are left out, so
    trainbook is neither importable nor listed as installed, while pip, ipykernel, torch and the
    rest come from the base: the notebook's %pip then installs trainbook and nothing else.

    Returns:
        (the venv's python, the venv's site-packages).
    """
    base_site = purelib(base_python)
    farm = root / "base-site-packages"
    farm.mkdir()
    for entry in base_site.iterdir():
        name = entry.name.lower()
        if name.startswith(("trainbook", "__editable__")) or name.endswith(".pth"):
            continue
        (farm / entry.name).symlink_to(entry)
    venv = root / "venv"
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = purelib(python)
    (site / "_colab_sim_base.pth").write_text(f"{farm}\n")
    check = ("import importlib.util as u; import pip, ipykernel, torch; "
             "assert u.find_spec('trainbook') is None, u.find_spec('trainbook')")
    subprocess.run([str(python), "-c", check], check=True)
    return python, site


def run_colab_notebook(root: Path, python: Path, repo: Path, helpers_ref: str, detect: str, pip_cache: Path,
                       notebook: Path = NOTEBOOK, params: dict | None = None, drive_dir: Path | None = None,
                       kernel_startup: str = ""):
    """Run a notebook with papermill in a simulated Colab kernel; return (proc, out_nb, log_path).

    Args:
        detect: "env" sets COLAB_RELEASE_TAG; "module" imports google.colab at kernel start instead
            (as Colab does), so each half of the notebook's IN_COLAB test is exercised by one run.
        notebook: the notebook to run; a second run under the same root reuses its venv and home.
        params: parameters over SMALL_RUN.
        drive_dir: the folder standing in for Google Drive (COLAB_STUB_DRIVE_DIR).
        kernel_startup: code the kernel runs at start (an IPython startup file), "" for none.
    """
    home, workdir, tmp = root / "home", root / "work", root / "tmp"
    for d in (home, workdir, tmp):
        d.mkdir(exist_ok=True)
    spec_dir = root / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (simulated Colab)", "language": "python",
            "env": {"PYTHONPATH": str(STUB_PATH)}}   # the stub is on the kernel's path only
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    if detect == "module":
        (startup / "00-colab.py").write_text("import google.colab\n")
    (startup / "10-test.py").write_text(kernel_startup)
    log_path = root / "colab_calls.jsonl"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WANDB_", "COLAB_", "TRAINBOOK_", "JUPYTER", "IPYTHON", "PYTHONPATH",
                                "VIRTUAL_ENV", "NETRC"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), JUPYTER_PATH=str(root / "jupyter"),
               IPYTHONDIR=str(home / ".ipython"), PYTHONNOUSERSITE="1", PIP_CACHE_DIR=str(pip_cache),
               TRAINBOOK_REPO_URL=repo_url(repo), COLAB_STUB_LOG=str(log_path),
               COLAB_STUB_SECRET_WANDB_API_KEY=FAKE_KEY,
               # belt and braces: should wandb ever get past the key check, it meets a closed local port
               WANDB_BASE_URL="http://127.0.0.1:9", WANDB_ERROR_REPORTING="false")
    if detect == "env":
        env["COLAB_RELEASE_TAG"] = "sim"
    if drive_dir is not None:
        env["COLAB_STUB_DRIVE_DIR"] = str(drive_dir)
    out_nb = root / f"executed-{notebook.stem}.ipynb"
    params = [a for k, v in {**SMALL_RUN, **(params or {}), "helpers_ref": helpers_ref}.items()
              for a in ("-p", k, str(v))]
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(out_nb), "-k", KERNEL_NAME,
           "--cwd", str(workdir), "--log-output", "--no-progress-bar", *params]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT_S)
    return proc, out_nb, log_path


def stub_calls(log_path: Path) -> list[dict]:
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def cell_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def installed_direct_url(site: Path) -> dict:
    dist = site / f"trainbook-{trainbook_version()}.dist-info"
    assert dist.is_dir(), f"trainbook was not installed into {site}: {sorted(p.name for p in site.iterdir())}"
    return json.loads((dist / "direct_url.json").read_text())


def files_containing(root: Path, needle: bytes) -> list[str]:
    """Every regular file under root (symlinks not followed) whose bytes contain needle."""
    hits = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink() and needle in path.read_bytes():
                hits.append(str(path))
    return hits


def assert_key_never_written(root: Path, proc) -> None:
    assert FAKE_KEY not in proc.stdout + proc.stderr, "the W&B key was printed by the notebook run"
    leaked = files_containing(root, FAKE_KEY.encode())
    assert not leaked, f"the W&B key was written to: {leaked}"


def base_environments():
    colab_venv = os.environ.get(COLAB_VENV_ENV)
    colab = pytest.param(Path(colab_venv) / "bin" / "python" if colab_venv else None, id="colab_versions",
                         marks=pytest.mark.skipif(not colab_venv, reason=f"{COLAB_VENV_ENV} is not set: "
                                                  "`make test-colab` builds .venv-colab and runs this case"))
    return [pytest.param(Path(sys.executable), id="sim"), colab]


# ---------------------------------------------------------------------------- the stub itself

def test_stub_is_namespace_friendly_and_refuses_to_import_outside_tests(tmp_path):
    log = tmp_path / "calls.jsonl"
    code = ("import google.protobuf, google.colab\n"
            "from google.colab import userdata, drive, output\n"
            "assert userdata.get('WANDB_API_KEY') == 'secret-value'\n"
            "try:\n    userdata.get('MISSING')\nexcept userdata.SecretNotFoundError as e:\n    print('raised', e)\n"
            f"drive.mount({str(tmp_path / 'drive')!r})\n"
            "output.enable_custom_widget_manager()\n")
    env = {**os.environ, "PYTHONPATH": str(STUB_PATH), "COLAB_STUB_LOG": str(log),
           "COLAB_STUB_SECRET_WANDB_API_KEY": "secret-value", "COLAB_STUB_DRIVE_DIR": str(tmp_path / "drive-data")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"raised Secret MISSING does not exist.\nMounted at {tmp_path / 'drive'}"
    assert (tmp_path / "drive" / "MyDrive").is_dir()
    calls = [(c["call"], c["args"][:1]) for c in stub_calls(log)]
    assert calls == [("userdata.get", ["WANDB_API_KEY"]), ("userdata.get", ["MISSING"]),
                     ("drive.mount", [str(tmp_path / "drive")]), ("output.enable_custom_widget_manager", [])]
    assert "secret-value" not in log.read_text()

    env.pop("COLAB_STUB_LOG")
    refused = subprocess.run([sys.executable, "-c", "import google.colab"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "COLAB_STUB_LOG is not set" in refused.stderr and "HINT" in refused.stderr
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    missing = subprocess.run([sys.executable, "-c", "import google.colab"], env=plain, capture_output=True, text=True)
    assert "No module named 'google.colab'" in missing.stderr


def run_stub(code: str, tmp_path: Path, **env_extra):
    env = {**os.environ, "PYTHONPATH": str(STUB_PATH), "COLAB_STUB_LOG": str(tmp_path / "calls.jsonl"), **env_extra}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_stub_drive_mount_follows_colabs_contract_and_keeps_files_across_a_reset(tmp_path):
    backing, mnt = tmp_path / "drive-data", tmp_path / "content" / "drive"
    mount = f"from google.colab import drive; drive.mount({str(mnt)!r})"
    assert "Mountpoint must be in a directory that exists" in run_stub(mount, tmp_path,
                                                                       COLAB_STUB_DRIVE_DIR=str(backing)).stderr
    (tmp_path / "content").mkdir()
    spaced = run_stub("from google.colab import drive; drive.mount('/content/my drive')", tmp_path,
                      COLAB_STUB_DRIVE_DIR=str(backing))
    assert "ValueError: Mountpoint must not contain a space." in spaced.stderr
    unset = run_stub(mount, tmp_path)
    assert "COLAB_STUB_DRIVE_DIR is not set" in unset.stderr and "HINT" in unset.stderr
    mnt.mkdir()
    (mnt / "stray.txt").write_text("")
    assert "Mountpoint must not already contain files" in run_stub(mount, tmp_path,
                                                                   COLAB_STUB_DRIVE_DIR=str(backing)).stderr
    (mnt / "stray.txt").unlink()

    first = run_stub(mount + "; open('" + str(mnt / "MyDrive" / "kept.txt") + "', 'w').write('x')", tmp_path,
                     COLAB_STUB_DRIVE_DIR=str(backing))
    assert first.returncode == 0 and first.stdout == f"Mounted at {mnt}\n", first.stderr
    assert (backing / "MyDrive" / "kept.txt").read_text() == "x"
    again = run_stub(mount, tmp_path, COLAB_STUB_DRIVE_DIR=str(backing))
    assert again.stdout == (f"Drive already mounted at {mnt}; to attempt to forcibly remount, "
                            f'call drive.mount("{mnt}", force_remount=True).\n')
    forced = run_stub(mount.replace(")", ", force_remount=True)"), tmp_path, COLAB_STUB_DRIVE_DIR=str(backing))
    assert forced.stdout == f"Mounted at {mnt}\n", forced.stderr
    mnt.unlink()   # a runtime reset: /content is wiped, Drive keeps its files
    assert run_stub(mount, tmp_path, COLAB_STUB_DRIVE_DIR=str(backing)).returncode == 0
    assert (mnt / "MyDrive" / "kept.txt").read_text() == "x"
    assert [c["args"] for c in stub_calls(tmp_path / "calls.jsonl") if c["call"] == "drive.mount"][-1] == \
        [str(mnt), "False", "False"]


@pytest.mark.parametrize("secret, no_access, expected", [
    ("from-the-key-panel", "", ["online", "from-the-key-panel", "API key from the Colab secret WANDB_API_KEY"]),
    (None, "", ["offline", None, "Colab secret WANDB_API_KEY not readable: SecretNotFoundError"]),
    ("from-the-key-panel", "1", ["offline", None, "NotebookAccessError (grant this notebook access in the key panel)"]),
], ids=["secret", "no-secret", "no-access"])
def test_tracking_auto_mode_reads_the_colab_secret(secret, no_access, expected, tmp_path):
    code = ("import json; from trainbook.tracking import resolve_wandb_mode\n"
            "print(json.dumps(resolve_wandb_mode('auto')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "COLAB_", "NETRC"))}
    env.update(PYTHONPATH=str(STUB_PATH), COLAB_STUB_LOG=str(tmp_path / "calls.jsonl"), COLAB_RELEASE_TAG="sim",
               HOME=str(tmp_path), COLAB_STUB_NO_ACCESS=no_access)
    if secret is not None:
        env["COLAB_STUB_SECRET_WANDB_API_KEY"] = secret
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    mode, key, reason = json.loads(done.stdout)
    assert [mode, key] == expected[:2] and expected[2] in reason, reason
    assert stub_calls(tmp_path / "calls.jsonl") == [{"call": "userdata.get", "args": ["WANDB_API_KEY"]}]


def test_key_search_finds_the_key_in_nested_and_binary_files_only(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "run.wandb").write_bytes(b"\x00\x01" + FAKE_KEY.encode() + b"\xff")
    (tmp_path / "a" / "clean.json").write_text('{"wandb_mode": "offline"}')
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b" / "run.wandb")
    assert files_containing(tmp_path, FAKE_KEY.encode()) == [str(tmp_path / "a" / "b" / "run.wandb")]


# ---------------------------------------------------------------------------- the notebook under Colab

@pytest.mark.parametrize("base_python", base_environments())
def test_colab_setup_installs_pinned_ref_and_runs_every_cell(base_python, tagged_repo, pip_cache, tmp_path):
    if not base_python.exists():
        pytest.fail(f"{COLAB_VENV_ENV} points at {base_python.parent.parent}, which has no bin/python. "
                    "HINT: bash tests/colab_env.sh builds it")
    version = trainbook_version()
    python, site = make_kernel_venv(base_python, tmp_path)
    proc, out_nb, log_path = run_colab_notebook(tmp_path, python, tagged_repo, f"v{version}", detect="env",
                                                pip_cache=pip_cache)
    assert proc.returncode == 0, f"papermill failed:\n{proc.stderr[-6000:]}"

    nb = nbformat.read(out_nb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(isinstance(c.execution_count, int) for c in code), [c.source[:40] for c in code if not c.execution_count]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    by_id = {c.get("id"): c for c in code}
    setup_out = cell_text(by_id["setup"])
    # verify_installation passed, and the trainbook it checked is the one %pip put in the venv
    assert f"trainbook {version} OK" in setup_out, setup_out
    assert f"from {site / 'trainbook'}" in setup_out, setup_out
    direct = installed_direct_url(site)
    assert direct["url"] == repo_url(tagged_repo) and direct["subdirectory"] == "helpers", direct
    assert direct["vcs_info"]["requested_revision"] == f"v{version}", direct
    assert direct["vcs_info"]["commit_id"] == git("rev-parse", f"v{version}^{{commit}}", cwd=tagged_repo)
    assert re.search(r"^in_colab\s+True$", cell_text(by_id["environment"]), re.M)

    calls = stub_calls(log_path)
    assert calls[0]["call"] == "output.enable_custom_widget_manager", calls
    assert {"call": "userdata.get", "args": ["WANDB_API_KEY"]} in calls, calls
    everything = "".join(cell_text(c) for c in code) + proc.stderr
    assert "API key from the Colab secret WANDB_API_KEY" in everything   # auto -> key found -> online tried
    assert "W&B: offline run in" in everything                           # ... and offline without network
    run_dir = tmp_path / "work" / "runs" / "colab-sim"
    assert (run_dir / "metrics.jsonl").read_text().strip() and (run_dir / "wandb").is_dir()
    assert json.loads((run_dir / "record.json").read_text())["epochs"] == 1

    # "Run all" again after a runtime restart: the right version is installed, so no %pip this time
    installed = site / f"trainbook-{version}.dist-info" / "RECORD"
    installed_at = installed.stat().st_mtime_ns
    nb.cells = nb.cells[:1 + next(i for i, c in enumerate(nb.cells) if c.get("id") == "environment")]
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    rerun_path = tmp_path / "setup-only.ipynb"
    nbformat.write(nb, rerun_path)
    calls_before = len(stub_calls(log_path))
    rerun, rerun_nb, _ = run_colab_notebook(tmp_path, python, tagged_repo, f"v{version}", detect="env",
                                            pip_cache=pip_cache, notebook=rerun_path)
    assert rerun.returncode == 0, f"papermill failed on the re-run:\n{rerun.stderr[-6000:]}"
    rerun_setup = cell_text(next(c for c in nbformat.read(rerun_nb, as_version=4).cells if c.get("id") == "setup"))
    assert f"trainbook {version} OK" in rerun_setup and "restart the kernel" not in rerun_setup, rerun_setup
    assert installed.stat().st_mtime_ns == installed_at, "the re-run reinstalled trainbook"
    assert [c["call"] for c in stub_calls(log_path)[calls_before:]] == ["output.enable_custom_widget_manager"]
    assert_key_never_written(tmp_path, proc)
    assert_key_never_written(tmp_path, rerun)

    if base_python != Path(sys.executable):   # the Colab-versions stack is what the kernel really ran on
        pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", COLAB_PINS.read_text(), re.M))
        code_v = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
        seen = json.loads(subprocess.run([str(python), "-c", code_v, *pins], check=True, capture_output=True,
                                         text=True).stdout)
        assert seen == pins


def test_colab_setup_fails_when_ref_differs_from_package_version(tagged_repo, pip_cache, tmp_path):
    version = trainbook_version()
    python, site = make_kernel_venv(Path(sys.executable), tmp_path)
    proc, out_nb, log_path = run_colab_notebook(tmp_path, python, tagged_repo, "v9.9.9", detect="module",
                                                pip_cache=pip_cache)
    assert proc.returncode != 0, "the notebook ran on although helpers_ref does not match trainbook's version"
    assert "InstallationError" in proc.stderr, proc.stderr[-4000:]
    assert f"trainbook {version} is installed from {site / 'trainbook'} but ==9.9.9 is required" in proc.stderr
    assert "HINT" in proc.stderr

    nb = nbformat.read(out_nb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup_at = next(i for i, c in enumerate(code) if c.get("id") == "setup")
    errors = [o for o in code[setup_at].outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["InstallationError"]
    assert all(c.execution_count is None for c in code[setup_at + 1:]), "cells ran after the failed setup"
    assert installed_direct_url(site)["vcs_info"]["requested_revision"] == "v9.9.9"   # %pip did install the ref
    # IN_COLAB came from google.colab being imported at kernel start (no COLAB_RELEASE_TAG in this run)
    assert [c["call"] for c in stub_calls(log_path)][:1] == ["output.enable_custom_widget_manager"]
    assert_key_never_written(tmp_path, proc)


# ---------------------------------------------------------------------------- persist_dir on the stand-in Drive

CONTENT = Path("/content")   # Colab's working folder; Drive is mounted at /content/drive
# In the kernel: SIGKILL at the moment the second step checkpoint is renamed into Drive (one is persisted)
KILL_AT_SECOND_PERSISTED_CHECKPOINT = """\
import os, signal, sys
_persisted = set()
def _kill_at_second_persisted_checkpoint(event, args):
    if event == "os.rename":
        dst = os.path.abspath(os.fspath(args[1]))
        if dst.startswith("/content/drive/") and os.path.basename(dst).startswith("step-"):
            _persisted.add(dst)
            if len(_persisted) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(_kill_at_second_persisted_checkpoint)
"""


@pytest.fixture
def colab_content(tmp_path):
    """/content as in Colab (created when missing) for one test at a time; yields the folder standing in for Drive."""
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / "trainbook-colab-content.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # another pytest run on this machine waits here
        created = not CONTENT.exists()
        try:
            CONTENT.mkdir(exist_ok=True)
        except PermissionError:
            pytest.skip("the Drive stand-in mounts at /content/drive as in Colab; this user may not create "
                        "/content (HINT: run as root, or create /content writable for this user)")
        mount = CONTENT / "drive"
        if mount.is_symlink():
            mount.unlink()   # the stand-in's link, left by an interrupted run of this test
        assert not mount.exists(), f"{mount} exists and is not the Drive stand-in's link; move it away"
        try:
            yield tmp_path / "google-drive"
        finally:
            if mount.is_symlink():
                mount.unlink()
            if created and not any(CONTENT.iterdir()):
                CONTENT.rmdir()


@pytest.mark.slow
def test_colab_persist_dir_on_drive_survives_a_runtime_reset(tagged_repo, pip_cache, tmp_path, colab_content):
    version, drive = trainbook_version(), colab_content
    python, site = make_kernel_venv(Path(sys.executable), tmp_path)
    params = {"persist_dir": "/content/drive/MyDrive/tb", "epochs": 3, "export_model": False}
    killed, _, log_path = run_colab_notebook(tmp_path, python, tagged_repo, f"v{version}", detect="env",
                                             pip_cache=pip_cache, params={**params, "wandb_mode": "disabled"},
                                             drive_dir=drive, kernel_startup=KILL_AT_SECOND_PERSISTED_CHECKPOINT)
    assert killed.returncode != 0 and "DeadKernelError" in killed.stderr, killed.stderr[-3000:]
    persisted = drive / "MyDrive" / "tb" / "colab-sim"
    steps = sorted(p.name for p in (persisted / "checkpoints").glob("step-*.pt"))
    assert len(steps) == 1 and (persisted / "training_config.json").is_file(), steps
    mounts = [c["args"] for c in stub_calls(log_path) if c["call"] == "drive.mount"]
    assert mounts == [["/content/drive", "False", "False"]]

    # a runtime reset wipes the local disk and unmounts Drive; then Run all
    shutil.rmtree(tmp_path / "work" / "runs")
    (CONTENT / "drive").unlink()
    calls_before = len(stub_calls(log_path))
    proc, out_nb, _ = run_colab_notebook(tmp_path, python, tagged_repo, f"v{version}", detect="env",
                                         pip_cache=pip_cache, params=params, drive_dir=drive)
    assert proc.returncode == 0, f"papermill failed:\n{proc.stderr[-6000:]}"
    calls = stub_calls(log_path)[calls_before:]
    assert [c["args"] for c in calls if c["call"] == "drive.mount"] == [["/content/drive", "False", "False"]]
    cells = {c.get("id"): c for c in nbformat.read(out_nb, as_version=4).cells if c.cell_type == "code"}
    assert "Mounted at /content/drive" in cell_text(cells["setup"])
    resumed_from = f"/content/drive/MyDrive/tb/colab-sim/checkpoints/{steps[0]}"
    assert f"resumed at step {int(steps[0][5:13])} from {resumed_from}" in cell_text(cells["train"])
    run_dir = tmp_path / "work" / "runs" / "colab-sim"
    assert json.loads((run_dir / "record.json").read_text())["epochs"] == 3
    assert json.loads((persisted / "results.json").read_text())["resumed_from"] == resumed_from
    assert sorted(p.name for p in (persisted / "checkpoints").iterdir()) == \
        sorted(p.name for p in (run_dir / "checkpoints").iterdir())   # best.pt and the newest keep_last steps
    assert (persisted / "metrics.jsonl").read_text() == (run_dir / "metrics.jsonl").read_text()
    assert_key_never_written(tmp_path, proc)   # the Drive copy (W&B's offline folder too) holds no key
