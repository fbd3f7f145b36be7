"""Run an exported trainbook bundle on a text file or on images and print its predictions.

    python <bundle>/inference.py <input> [--max-new-bytes 32] [--temperature 0.8] [--top-k 40] [--seed 0] [--device cpu]

This file is copied into every export bundle as `inference.py`; it finds the bundle next to
itself and loads it with `trainbook.load_bundle` (sha256-checked, safetensors, no pickle).
Text is encoded and decoded with the bundle's tokenizer (tokenizer.json; bytes when there is none)
and class indices are printed as the class names the model was trained with.

Running this file is running the bundle's code, so it loads with trust_remote_code=True: the
model code in the bundle (model_code/) is imported. Run only bundles you trust; `tb.load_bundle(path)`
inspects one without running any of its code.
What <input> is, by task kind:
- lm: a text file; every non-empty line is a prompt. Prints a sampled continuation:
  `line 3<TAB>'prompt tail'<TAB>-> 'continuation'`. Each next token is drawn from the softmax of
  the logits / temperature, restricted to the top_k most likely tokens (0: all), with a generator
  seeded by --seed (the same seed gives the same text); --temperature 0 is greedy (argmax).
- text classification: a text file; prints the predicted class of every non-empty line:
  `line 3<TAB>email<TAB>0.912<TAB>'start of the line'`.
- vision classification: an image file or a folder of images; prints the class per image:
  `cat.png<TAB>3<TAB>0.871`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class InputError(ValueError):
    """The input file or folder cannot be read for this task; the message names it."""


def read_lines(path: Path) -> list[tuple[str, bytes]]:
    """Non-empty lines of a text file as (name, utf-8 bytes)."""
    if not path.is_file():
        raise InputError(f"{path} is not a file; this task reads a text file (one input per line)")
    lines = [(f"line {i}", line.rstrip(b"\r")) for i, line in enumerate(path.read_bytes().split(b"\n"), start=1)]
    lines = [(name, data) for name, data in lines if data.strip()]
    if not lines:
        raise InputError(f"{path} has no non-empty lines")
    return lines


def read_images(path: Path, spec) -> list[tuple[str, torch.Tensor]]:
    """Images resized to the spec's size, as (name, C x H x W floats in [0, 1])."""
    from PIL import Image, UnidentifiedImageError

    if spec.channels not in (1, 3):
        raise InputError(f"reading image files supports 1 or 3 channels; this model has {spec.channels}")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path} has no images ({', '.join(IMAGE_SUFFIXES)})")
    mode, out = ("L" if spec.channels == 1 else "RGB"), []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert(mode).resize((spec.image_size, spec.image_size))
                x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"{f}: unreadable image ({e})") from None
        x = x.view(spec.image_size, spec.image_size, spec.channels).permute(2, 0, 1).float() / 255
        out.append((f.name, x))
    return out


def encode(spec, data: bytes, tokenizer=None) -> torch.Tensor:
    """Token ids of UTF-8 text with the spec's tokenizer (bytes: the bytes themselves)."""
    tok = tokenizer or _tokenizer(spec)
    if tok.is_byte:
        return torch.tensor(list(data), dtype=torch.long)
    return torch.from_numpy(tok.encode(data.decode("utf-8", "replace")))


def read_examples(path: Path, spec) -> list[dict]:
    """Unlabelled examples from a file or folder for profiling (lm: max_seq_len-token windows)."""
    if spec.modality == "vision":  # production inputs have no labels
        return [{spec.input_key: x} for _, x in read_images(path, spec)]
    if spec.kind == "lm":
        if not path.is_file():
            raise InputError(f"{path} is not a file; lm reads one text file")
        ids = encode(spec, path.read_bytes())
        return [{spec.input_key: ids[i:i + spec.max_seq_len]}
                for i in range(0, len(ids), spec.max_seq_len) if len(ids) - i >= 2]
    return [{spec.input_key: encode(spec, d)[: spec.max_seq_len]} for _, d in read_lines(path)]


def write_samples(examples, spec, out, n: int = 4) -> Path:
    """Write n examples the way inference.py reads them (text lines or PNG images).

    Returns:
        The text file (text tasks) or image folder (vision) written at `out`.
    """
    out, picked = Path(out), [examples[i] for i in range(min(n, len(examples)))]
    if spec.modality == "text":
        tok = _tokenizer(spec)
        lines = [tok.decode(e[spec.input_key].tolist()).replace("\n", " ").strip() or "?" for e in picked]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for i, e in enumerate(picked):
        x = (e[spec.input_key].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1)
        Image.fromarray(x.numpy()).save(out / f"sample-{i}-label-{int(e[spec.label_key])}.png")
    return out


@torch.no_grad()
def classify(model, spec, inputs: list, device, batch_size: int = 64) -> list[tuple[int, float]]:
    """(class index, probability) per input: token-id tensors (text) or images (vision)."""
    from trainbook.models import make_forward
    from trainbook.tasks import collator_for

    forward, collate, out = make_forward(model, spec), collator_for(spec), []
    for start in range(0, len(inputs), batch_size):
        # the collators want a label per example; it is not used here
        batch = collate([{spec.input_key: x, spec.label_key: 0} for x in inputs[start:start + batch_size]])
        batch = {k: v.to(device) for k, v in batch.items()}
        probs = forward(batch).float().softmax(-1)
        p, idx = probs.max(-1)
        out += list(zip(idx.tolist(), p.tolist()))
    return out


TEMPERATURE, TOP_K = 0.8, 40  # lm sampling defaults: a little sharper than the model, the 40 likeliest tokens


def next_token(logits: torch.Tensor, temperature: float = TEMPERATURE, top_k: int = TOP_K,
               generator: torch.Generator | None = None) -> int:
    """One token id from 1-D logits: argmax when temperature is 0, else a draw from
    softmax(logits / temperature) over the top_k likeliest ids (top_k 0: every id).

    Raises:
        ValueError: a negative temperature or top_k.
    """
    if temperature < 0 or top_k < 0:
        raise ValueError(f"temperature and top_k must be >= 0; got temperature={temperature}, top_k={top_k}")
    logits = logits.float()
    if temperature == 0:
        return int(logits.argmax())
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = (logits / temperature).softmax(-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def continue_ids(model, spec, ids: torch.Tensor, done, temperature: float = TEMPERATURE, top_k: int = TOP_K,
                 seed: int = 0) -> list[int]:
    """New token ids after the prompt `ids` (1-D) until done(new_ids) is true, keeping the last
    max_seq_len tokens as context; sampled as in next_token with a generator seeded by `seed`."""
    from trainbook.models import make_forward

    forward, generator = make_forward(model, spec), torch.Generator().manual_seed(seed)
    ids = ids[None] if ids.numel() else torch.zeros((1, 1), dtype=torch.long, device=ids.device)
    new: list[int] = []
    while not done(new):
        context = ids[:, -spec.max_seq_len:]
        logits = forward({spec.input_key: context, "attention_mask": torch.ones_like(context)})[0, -1]
        new.append(next_token(logits, temperature, top_k, generator))
        ids = torch.cat([ids, torch.tensor([[new[-1]]], device=ids.device)], dim=1)
    return new


def continue_bytes(model, spec, prompt: bytes, n: int, device, temperature: float = TEMPERATURE,
                   top_k: int = TOP_K, seed: int = 0) -> bytes:
    """Continuation of `prompt` by n bytes (a byte-level model); sampled as in next_token."""
    ids = torch.tensor(list(prompt), dtype=torch.long, device=device)
    return bytes(continue_ids(model, spec, ids, lambda new: len(new) >= n, temperature, top_k, seed))


def continue_text(model, spec, prompt: bytes, n_bytes: int, device, tokenizer=None, temperature: float = TEMPERATURE,
                  top_k: int = TOP_K, seed: int = 0) -> str:
    """Continuation of `prompt` with the spec's tokenizer: tokens until it has n_bytes bytes of text
    (at most n_bytes tokens); sampled as in next_token (temperature 0: greedy)."""
    tok = tokenizer or _tokenizer(spec)
    if tok.is_byte:
        return continue_bytes(model, spec, prompt, n_bytes, device, temperature, top_k, seed).decode("utf-8", "replace")
    ids = encode(spec, prompt, tok).to(device)

    def done(new):
        return len(new) >= n_bytes or len(tok.decode(new).encode("utf-8")) >= n_bytes

    return tok.decode(continue_ids(model, spec, ids, done, temperature, top_k, seed))


def _tokenizer(spec):
    from trainbook.data import tokenizer_for

    return tokenizer_for(spec)


def predict(model, spec, path: Path, device="cpu", max_new_bytes: int = 32, temperature: float = TEMPERATURE,
            top_k: int = TOP_K, seed: int = 0) -> list[str]:
    """Prediction lines (tab-separated) for the input file or folder; see the module docstring.
    lm: temperature, top_k and seed set the sampling (next_token); each prompt starts from `seed`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    model.eval()
    names = [spec.class_names[i] if i < len(spec.class_names) else str(i) for i in range(spec.num_classes)]
    if spec.modality == "vision":
        images = read_images(path, spec)
        preds = classify(model, spec, [x for _, x in images], device)
        return [f"{name}\t{names[c]}\t{p:.3f}" for (name, _), (c, p) in zip(images, preds)]
    lines = read_lines(path)
    if spec.kind == "lm":
        keep = max(1, spec.max_seq_len - 1)  # bytes: the prompt's last bytes; subwords: the context is cut in tokens
        prompt = (lambda data: data) if spec.tokenizer_sha else (lambda data: data[-keep:])  # noqa: E731
        return [f"{name}\t{data[-40:].decode('utf-8', 'replace')!r}\t-> "
                f"{continue_text(model, spec, prompt(data), max_new_bytes, device, None, temperature, top_k, seed)!r}"
                for name, data in lines]
    ids = [encode(spec, data)[: spec.max_seq_len] for _, data in lines]
    preds = classify(model, spec, ids, device)
    return [f"{name}\t{names[c]}\t{p:.3f}\t{data[:40].decode('utf-8', 'replace')!r}"
            for (name, data), (c, p) in zip(lines, preds)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run this trainbook bundle on a text file or images.")
    parser.add_argument("input", help="text file (lm, text classification) or image file/folder (vision)")
    parser.add_argument("--max-new-bytes", type=int, default=32, help="lm: bytes to generate per prompt")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE, help="lm: sampling temperature; 0 = greedy")
    parser.add_argument("--top-k", type=int, default=TOP_K, help="lm: sample among the k likeliest tokens; 0 = all")
    parser.add_argument("--seed", type=int, default=0, help="lm: seed of the sampling (same seed, same text)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    args = parser.parse_args(argv)
    if args.temperature < 0 or args.top_k < 0:
        parser.error(f"--temperature and --top-k must be >= 0; got {args.temperature} and {args.top_k}")
    bundle = Path(__file__).resolve().parent
    try:
        import trainbook
    except ImportError:
        version = json.loads((bundle / "metadata.json").read_text())["versions"]["trainbook"]
        raise SystemExit(f"error: this bundle needs the trainbook package: pip install 'trainbook=={version}' "
                         "(or pip install ./helpers from the trainbook repository)") from None
    from trainbook.export.errors import BundleError

    try:
        # running this file already runs this bundle's code, so its model_code.py (if any) is trusted too
        model, meta = trainbook.load_bundle(bundle, device=args.device, trust_remote_code=True)
        lines = predict(model, meta["task_spec"], Path(args.input), args.device, args.max_new_bytes,
                        args.temperature, args.top_k, args.seed)
    except (InputError, BundleError) as e:
        raise SystemExit(f"error: {e}") from None
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
