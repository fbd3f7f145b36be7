"""Data loading: samples/s and the step's wait for data with num_workers 0 vs 2, side by side.

    python benchmarks/bench_loading.py [--rounds 6] [--images 5000] [--sizes 32,128] [--text-windows 2048]

(a) image folders: PNG files written here (10 class folders, `--images` files per size, one
    folder per size in `--sizes`: 32x32 is the model's input, 128x128 is photo-like), decoded
    lazily in __getitem__ (open, RGB, resize to 32x32, random horizontal flip), the built-in tiny
    vision CNN. trainbook's own image-folder loader decodes every file up front; this dataset
    decodes per fetch, as a dataset of real photos must.
(b) text: the built-in lm task (byte windows already in memory), the built-in tiny GPT.
Each run trains 2 epochs; the numbers are epoch 2's (workers already started): samples/s, and
the time the loop waited for its micro-batches (history row `data_wait_s`) as a share of the
epoch. Rounds alternate the order of the two settings; medians with min-max. The final weights
of the two settings are compared in the first round (they must be identical).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import trainbook as tb


class LazyImageFolder(torch.utils.data.Dataset):
    """(path, label) pairs; each fetch decodes the file, resizes it and flips it at random."""

    def __init__(self, items: list[tuple[str, int]], size: int = 32):
        self.items, self.size = items, size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as im:
            im = im.convert("RGB").resize((self.size, self.size))
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        x = x.view(self.size, self.size, 3).permute(2, 0, 1).float() / 255
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        return {"pixel_values": x, "labels": label}


def write_image_folder(root: Path, n: int, size: int, classes: int = 10) -> list[tuple[str, int]]:
    """n PNG files: a class-dependent colour gradient plus noise (so PNG cannot shrink them to nothing)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)[None, :, None]
    items = []
    for i in range(n):
        label = i % classes
        colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256]) / 255
        pixels = 0.6 * ramp * colour + 0.4 * rng.random((size, size, 3))
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.png"
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
        items.append((str(path), label))
    return items


def run(model_fn, data, spec, num_workers: int, out: str, batch: int, seed: int = 0):
    cfg = tb.TrainingConfig(output_dir=out, run_name=f"w{num_workers}-{time.perf_counter_ns()}", epochs=2,
                            batch_size=batch, learning_rate=1e-3, wandb_mode="disabled", resume="never",
                            save_every_n_epochs=0, progress_bar=False, seed=seed, num_workers=num_workers)
    model = model_fn()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        result = tb.Trainer(model, training_config=cfg, task_spec=spec).train(data)
    row = result.history[-1]
    return row["samples_per_s"], row["data_wait_s"] / row["epoch_time_s"], model.state_dict()


def compare(name, model_fn, data, spec, rounds, out, batch) -> dict:
    results = {0: {"samples_per_s": [], "wait_share": []}, 2: {"samples_per_s": [], "wait_share": []}}
    weights = {}
    for r in range(rounds):
        for workers in ((0, 2) if r % 2 == 0 else (2, 0)):
            speed, wait, state = run(model_fn, data, spec, workers, out, batch)
            results[workers]["samples_per_s"].append(speed)
            results[workers]["wait_share"].append(wait)
            if r == 0:
                weights[workers] = state
    identical = all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    ratio = [b / a for a, b in zip(results[0]["samples_per_s"], results[2]["samples_per_s"])]
    return {"name": name, "results": results, "ratio": ratio, "identical": identical}


def fmt(values, scale=1.0, digits=0, unit=""):
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f}{unit} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def report(case: dict):
    print(case["name"], flush=True)
    for workers, r in case["results"].items():
        print(f"    num_workers {workers}   {fmt(r['samples_per_s'], unit=' samples/s'):<34}"
              f"waits for data {fmt(r['wait_share'], 100, 1, ' %')} of the epoch")
    print(f"    samples/s ratio 2 / 0 workers   {fmt(case['ratio'], digits=2)}")
    print(f"    identical weights with 0 and 2 workers: {case['identical']}", flush=True)


def main(rounds: int = 6, images: int = 5000, sizes: tuple = (32, 128), text_windows: int = 2048) -> dict:
    print(f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, {rounds} rounds, "
          f"num_workers='auto' here = {tb.environment()['auto_num_workers']}", flush=True)
    vision = tb.TaskSpec.preset("vision-cls").replace(image_size=32, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    cases = {}
    with tempfile.TemporaryDirectory() as out:
        for size in sizes:
            t0 = time.perf_counter()
            items = write_image_folder(Path(out) / f"images{size}", images, size)
            name = (f"(a) image folder, {images} PNG files {size}x{size}{' -> 32x32' if size != 32 else ''}, "
                    f"decoded per fetch (written in {time.perf_counter() - t0:.0f} s), tiny CNN, batch 64")
            cases[f"images_{size}"] = compare(name, lambda: tb.build_model(vision, "tiny", seed=0),
                                              LazyImageFolder(items), vision, rounds, out, 64)
            report(cases[f"images_{size}"])
        lm = tb.TaskSpec.preset("lm")
        text = tb.load_task_data("lm", limit=text_windows, spec=lm).train
        b = compare(f"(b) text, built-in lm ({len(text)} windows of {lm.max_seq_len} bytes in memory), tiny GPT, batch 16",
                    lambda: tb.build_model(lm, "tiny", seed=0), text, lm, rounds, out, 16)
        report(b)
    return {**cases, "text": b}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--sizes", default="32,128", help="comma-separated PNG sizes, one image folder each")
    p.add_argument("--text-windows", type=int, default=2048)
    args = p.parse_args()
    main(args.rounds, args.images, tuple(int(v) for v in args.sizes.split(",")), args.text_windows)
