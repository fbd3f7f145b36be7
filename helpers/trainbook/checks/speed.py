"""Memory and speed: parameters, activation memory, peak memory and step time vs batch size,
inference latency and throughput, on the device the checks run on.

    result = check_memory_and_speed(probe, full=False)

Everything is measured, not estimated. Activation memory is what autograd saves for the backward
pass (summed through `torch.autograd.graph.saved_tensors_hooks`, parameters left out), the same
on every device. Peak memory during a training step is `torch.cuda.max_memory_allocated` on
CUDA and the process's peak resident set on the CPU (Linux resets the peak through
/proc/self/clear_refs first; elsewhere it is the lifetime peak).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time

import torch

from ..models import count_parameters
from .report import CheckResult

MB = 2 ** 20


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return device.type


class PeakMemory:
    """Peak memory in bytes during a block: CUDA allocated memory, or the CPU process's peak RSS."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0
        self.method = "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS"

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_peak_rss():
            self.method = "lifetime peak RSS"
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _rss()[1]
        return False


class SavedActivations:
    """Bytes autograd saves for the backward pass during a block (unique storages, no parameters)."""

    def __init__(self, model: torch.nn.Module):
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages: dict[int, int] = {}

    def pack(self, t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.params:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    def __enter__(self):
        self.storages = {}  # each entry counts one forward
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self.hooks.__exit__(*exc)

    @property
    def nbytes(self) -> int:
        return sum(self.storages.values())


def _rss() -> tuple[int, int]:
    """(current, peak) resident set size in bytes."""
    try:
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak *= 1 if os.uname().sysname == "Darwin" else 1024  # bytes on macOS, KiB on Linux
        return peak, peak


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int, memory: PeakMemory | None = None) -> float:
    """Median seconds of `fn()` over `repeats` calls after one warm-up call; `memory` (when
    given) measures the first timed call."""
    fn()
    times = []
    for i in range(repeats):
        with memory if memory is not None and i == 0 else contextlib.nullcontext():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _is_oom(e: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch < 2.5: only the CUDA name
    text = str(e).lower()
    return isinstance(e, (oom, MemoryError)) or "out of memory" in text or "can't allocate memory" in text


def check_memory_and_speed(probe, full: bool) -> CheckResult:
    """Training step (forward + backward) time, activation memory and peak memory at growing batch
    sizes; inference latency at batch 1 and throughput at the largest batch that ran; the device named."""
    device, spec, model = probe.device, probe.spec, probe.model
    sizes, repeats = ([1, 4, 16, 64], 5) if full else ([1, 4, 16], 3)
    length = probe.max_len if spec.modality == "text" else None
    params = {id(p): p for p in model.parameters()}.values()
    numbers = {"device": device_name(device), "parameters": count_parameters(model),
               "param_mb": sum(p.numel() * p.element_size() for p in params) / MB}
    rows, failed, mem = [], None, PeakMemory(device)
    with probe.kept(train=True):
        for n in sizes:
            batch = probe.batch(n, length, real=False)
            saved = SavedActivations(model)

            def step():
                with saved:
                    loss = probe.loss(batch)
                loss.backward()
                model.zero_grad(set_to_none=True)
            mem = PeakMemory(device)
            try:
                seconds = _timed(step, device, repeats, memory=mem)
            except Exception as e:
                if not _is_oom(e):
                    raise
                failed = (n, type(e).__name__)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                break
            rows.append({"batch": n, "step_s": seconds, "activation_mb": saved.nbytes / MB, "peak_mb": mem.peak / MB})
        model.eval()
        if rows:
            one, big = probe.batch(1, length, real=False), rows[-1]["batch"]
            big_batch = probe.batch(big, length, real=False)
            with torch.no_grad():
                latency = _timed(lambda: probe.logits(one), device, repeats + 2)
                through = big / _timed(lambda: probe.logits(big_batch), device, repeats)
    details = {key: [r[key] for r in rows] for key in ("batch", "step_s", "activation_mb", "peak_mb")}
    details["memory_method"] = mem.method
    if not rows:
        return CheckResult("memory_and_speed", "fail", numbers, f"a training step at batch 1 ran out of memory on "
                           f"{numbers['device']}; HINT: a smaller model_size, or a device with more memory", details)
    last = rows[-1]
    per_sample = last["activation_mb"] / last["batch"]
    numbers.update({"batch": last["batch"], "step_ms": 1000 * last["step_s"], "activation_mb": last["activation_mb"],
                    "peak_mb": last["peak_mb"], "latency_ms_b1": 1000 * latency, "samples_per_s": through})
    if length:
        numbers["tokens_per_s"] = through * length
    if failed:
        return CheckResult("memory_and_speed", "warn", numbers, f"batch {failed[0]} ran out of memory ({failed[1]}) on "
                           f"{numbers['device']}; the largest that fit is {last['batch']}: keep batch_size below it "
                           "or use gradient_accumulation_steps", details)
    return CheckResult("memory_and_speed", "pass", numbers, f"on {numbers['device']}: batch {last['batch']} trains in "
                       f"{1000 * last['step_s']:.3g} ms/step with {per_sample:.2g} MB of activations per sample "
                       f"({mem.method} {last['peak_mb']:.4g} MB); inference {through:.4g} samples/s", details)
