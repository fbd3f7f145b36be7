import pytest

import trainbook as tb
from trainbook import env
from trainbook.env import InstallationError, check_strategy, DistributedSetupError


def test_verify_installation_accepts_matching_range(capsys):
    assert tb.verify_installation(">=0.1,<0.2") == tb.__version__
    assert f"trainbook {tb.__version__} OK" in capsys.readouterr().out


def test_verify_installation_rejects_wrong_version():
    with pytest.raises(InstallationError, match=rf"trainbook {tb.__version__} is installed .* but ==9.9.9 is required"):
        tb.verify_installation("==9.9.9")


def test_verify_installation_rejects_bad_specifier():
    with pytest.raises(InstallationError, match="is not a version specifier"):
        tb.verify_installation("about 0.1")


def test_verify_installation_reports_broken_module():
    with pytest.raises(InstallationError, match=r"trainbook\.no_such_module"):
        tb.verify_installation("", modules=("no_such_module",), verbose=False)


def test_environment_reports_device_and_versions():
    env = tb.environment()
    assert env["device"] in ("cpu", "cuda", "mps") and env["trainbook"] == tb.__version__
    assert env["in_colab"] is False and env["auto_precision"] in ("fp32", "bf16", "fp16")


@pytest.mark.parametrize("notebook,cores,local_world,expected", [
    (True, 2, None, 0),    # Colab's free runtime: workers would take the cores the step needs
    (True, 1, None, 0),
    (True, 8, None, 4),
    (False, 2, None, 1),   # a script: min(4, cores - 1)
    (False, 3, None, 2),
    (False, 16, None, 4),
    (False, 16, "4", 3),   # torchrun, 4 processes on this machine: 4 cores each
    (False, 2, "2", 0),
])
def test_auto_num_workers_follows_notebook_and_cores(monkeypatch, notebook, cores, local_world, expected):
    monkeypatch.setattr("trainbook.env.in_notebook", lambda: notebook)
    monkeypatch.setattr("trainbook.env.cpu_cores", lambda: cores)
    if local_world is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world)
    assert env.auto_num_workers() == expected
    assert env.resolve_num_workers("auto") == expected and env.resolve_num_workers(3) == 3
    report = tb.environment()
    assert report["auto_num_workers"] == expected and report["cpu_cores"] == cores


def test_ddp_in_a_notebook_is_refused_with_the_torchrun_command(monkeypatch):
    monkeypatch.setattr("trainbook.env.in_notebook", lambda: True)
    with pytest.raises(DistributedSetupError, match=r"strategy='ddp' cannot run inside a notebook\. Run: torchrun --nproc_per_node 2 -m trainbook train --config run.json"):
        check_strategy("ddp")
    check_strategy("single")


def test_import_is_lazy():
    import subprocess, sys
    code = "import sys, trainbook; print(sorted(m for m in sys.modules if m.startswith(('wandb', 'matplotlib', 'optuna', 'scipy', 'trainbook.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
