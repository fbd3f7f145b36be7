import pytest

import trainbook as tb
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
