"""Environment detection, install verification and distributed guardrails.

    tb.verify_installation(">=0.1,<0.2"); print(tb.environment())
"""

from __future__ import annotations

import importlib
import os
import platform
import sys

REQUIRED_MODULES = ("config", "builder", "tasks", "env", "notebook", "persist", "dashboard", "cli",
                    "runconfig", "data", "models", "engine", "tracking", "drift", "search", "checks", "export",
                    "lint", "validation")


class InstallationError(ImportError):
    pass


class DistributedSetupError(RuntimeError):
    pass


def in_colab() -> bool:
    """Inside a Colab runtime: google.colab is loaded by Colab's kernel, and Colab sets COLAB_RELEASE_TAG."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (not plain IPython in a terminal)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def auto_num_workers() -> int:
    """What num_workers='auto' means here: 0 in a notebook on <= 2 cores, else min(4, cores - 1).

    Under torchrun the cores are shared by the processes of this machine (LOCAL_WORLD_SIZE).
    """
    cores = cpu_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if in_notebook() and cores <= 2:
        return 0
    return max(0, min(4, cores - 1))


def resolve_num_workers(num_workers) -> int:
    """The number of DataLoader worker processes for a config value ('auto' or an int >= 0)."""
    return auto_num_workers() if num_workers == "auto" else int(num_workers)


def torchrun_env() -> dict | None:
    """RANK/WORLD_SIZE/LOCAL_RANK from torchrun, or None outside it."""
    keys = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    if all(k in os.environ for k in keys):
        return {k.lower(): int(os.environ[k]) for k in keys}
    return None


def torchrun_hint(nproc: int = 2) -> str:
    return (f"Run: torchrun --nproc_per_node {nproc} -m trainbook train --config run.json "
            "(write it with cfg.save('run.json') and add \"task\": \"<lm|text-cls|vision-cls>\")")


def check_strategy(strategy: str):
    """Guardrails: ddp only under torchrun, never inside a notebook kernel."""
    if strategy != "ddp":
        return
    if in_notebook():
        raise DistributedSetupError(f"strategy='ddp' cannot run inside a notebook. {torchrun_hint()}")
    if torchrun_env() is None:
        raise DistributedSetupError(f"strategy='ddp' needs the torchrun launcher (RANK/WORLD_SIZE unset). "
                                    f"{torchrun_hint()}")


def _version_tuple(v: str):
    from packaging.version import Version

    return Version(v)


def verify_installation(spec: str = "", modules=REQUIRED_MODULES, verbose: bool = True) -> str:
    """Check that trainbook is importable, its version satisfies `spec`, and its modules load.

    Args:
        spec: a version specifier such as ">=0.1,<0.2" or "==0.1.0" ("" accepts any).
    Returns:
        the installed version.
    Raises:
        InstallationError: wrong version or a module that fails to import, with the fix.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    import trainbook

    version = trainbook.__version__
    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier:
        raise InstallationError(f"verify_installation: {spec!r} is not a version specifier "
                                "(e.g. '>=0.1,<0.2')") from None
    if spec and version not in wanted:
        raise InstallationError(
            f"trainbook {version} is installed from {os.path.dirname(trainbook.__file__)} but {spec} is "
            f"required. HINT: pip install --force-reinstall the matching ref, then restart the runtime.")
    failed = []
    for name in modules:
        try:
            importlib.import_module(f"trainbook.{name}")
        except ImportError as e:
            failed.append(f"trainbook.{name}: {e}")
    if failed:
        raise InstallationError("trainbook modules failed to import:\n  " + "\n  ".join(failed))
    if verbose:
        print(f"trainbook {version} OK ({len(modules)} modules) from {os.path.dirname(trainbook.__file__)}")
    return version


def environment() -> dict:
    """What this runtime offers: colab/notebook, device, GPU name, bf16 support, versions."""
    import torch

    cuda = torch.cuda.is_available()
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    import trainbook

    info = {
        "in_colab": in_colab(),
        "in_notebook": in_notebook(),
        "device": "cuda" if cuda else "mps" if mps else "cpu",
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "cpu_threads": torch.get_num_threads(),
        "cpu_cores": cpu_cores(),
        "auto_num_workers": auto_num_workers(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "trainbook": trainbook.__version__,
        "torchrun": torchrun_env(),
        "strategy": "ddp (torchrun)" if torchrun_env() else "single process (DDP: python -m trainbook train under torchrun)",
        "auto_precision": "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp16" if cuda else "fp32",
    }
    return info


def resolve_device(device: str):
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} but CUDA is not available here. HINT: use device='auto' or 'cpu'.")
    return torch.device(device)
