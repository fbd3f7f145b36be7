"""Export bundles: one folder that reloads anywhere and gives the same outputs.

    path = export_bundle(model, cfg, spec, run_dir / "bundle", reference_profile=ref)

A bundle holds model.safetensors, model_config.json, training_config.json, task_spec.json,
reference_profile.json, inference.py, tokenizer.json (text tasks with a subword tokenizer),
optionally model.pt2 (torch.export), and metadata.json
(versions, metrics, parity, sha256 of every other file). `load_bundle` checks every sha256
before it reads anything and loads weights with safetensors (no pickle). `export_bundle`
reloads what it wrote and compares outputs with the in-memory model before it returns.
"""

from __future__ import annotations

import copy
import datetime
import math
import platform
import shutil
import warnings
from pathlib import Path

import numpy
import safetensors
import torch

from .. import __version__
from ..config import TrainingConfig
from ..models.adapter import make_forward
from ..persist import persist_folder
from ..tasks import TaskSpec, collator_for
from .errors import BundleError
from .files import (BUNDLE_FORMAT, FORMATS, INFERENCE, METADATA, MODEL_CONFIG, PARITY_TOLERANCE, PROGRAM, REFERENCE, TASK_SPEC,
                    TOKENIZER, TRAINING_CONFIG, WEIGHTS, jsonable, read_json, read_record, sha256, verified_metadata, write_json)
from .model_io import build_model, describe_model, load_weights, save_weights
from .replace import publish, recover, staging_dir
from .trust import check_model_size, check_trust


def export_bundle(model, training_config: TrainingConfig, task_spec: TaskSpec, out_dir, *,
                  reference_profile: dict | None = None, metrics: dict | None = None, example_batch=None,
                  formats=("safetensors",)) -> Path:
    """Write a bundle, reload it, and check that it gives the in-memory model's outputs.

    Args:
        model: a built-in model, a transformers model, a model from `tb.load_model`, or an
            nn.Module whose class is defined in a .py file or an installed package (not in
            __main__ or a function); see trainbook.export.model_io for what each stores.
        training_config, task_spec: what it was trained with.
        out_dir: the bundle folder; created, or replaced when it already holds a bundle. Inside
            training_config.run_dir and with training_config.persist_dir set, it is copied there too.
        reference_profile: the drift reference, `tb.profile_dataset(data.train, spec, ...)`.
        metrics: JSON-serialisable values to keep (e.g. the best val_loss).
        example_batch: parity input: a collated batch, a list of examples or an input tensor;
            None uses a small random batch shaped by the spec.
        formats: "safetensors" (always) and optionally "torch_export" (model.pt2; a failure is
            warned about and recorded in metadata.json, not raised).
    Returns:
        Path of the bundle folder.
    Raises:
        BundleError: the model cannot be rebuilt from a bundle, out_dir holds something that is
            not a bundle, or the reloaded outputs differ by more than 1e-5 (bundle marked failed).
        TypeError: an argument of the wrong type, or metrics/profile that are not JSON.
    """
    if not isinstance(training_config, TrainingConfig) or not isinstance(task_spec, TaskSpec):
        raise TypeError(f"training_config must be a TrainingConfig and task_spec a TaskSpec; got "
                        f"{type(training_config).__name__} and {type(task_spec).__name__}")
    if set(formats) - set(FORMATS):
        raise ValueError(f"formats must be among {FORMATS}; got {sorted(set(formats) - set(FORMATS))}")
    model, out_dir = _unwrap(model), Path(out_dir)
    recover(out_dir)  # a replace that a crash interrupted is finished or undone first
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / METADATA).is_file())):
        raise BundleError(f"{out_dir}: exists and is not a trainbook bundle; refusing to replace it. "
                          "HINT: pass an empty or new out_dir")
    tmp, device = staging_dir(out_dir), _device_of(model)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        model_config = describe_model(model, tmp)
        aliases = save_weights(model, tmp / WEIGHTS)
        write_json(tmp / MODEL_CONFIG, model_config)
        write_json(tmp / TRAINING_CONFIG, training_config.to_dict())
        write_json(tmp / TASK_SPEC, task_spec.to_dict())
        write_json(tmp / REFERENCE, jsonable(reference_profile, "reference_profile"))
        shutil.copyfile(Path(__file__).with_name("inference.py"), tmp / INFERENCE)
        if task_spec.tokenizer_sha:  # the subword tokenizer travels with the model
            from ..data import tokenizer_for

            tokenizer_for(task_spec).save_file(tmp / TOKENIZER)
        batch = _example_batch(example_batch, task_spec, device)
        exported = {"status": "not requested"}
        if "torch_export" in formats:
            exported = _torch_export(model, batch, task_spec, tmp / PROGRAM)
        meta = {"format": BUNDLE_FORMAT,
                "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "versions": {"trainbook": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
                             "safetensors": safetensors.__version__, "python": platform.python_version()},
                "metrics": jsonable(metrics or {}, "metrics"),
                "model": {"class": f"{type(model).__module__}.{type(model).__qualname__}",
                          "source": model_config["source"], "tied_weights": aliases,
                          "parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())},
                "parity": None, "torch_export": exported,
                "files": {f.relative_to(tmp).as_posix(): sha256(f) for f in sorted(tmp.rglob("*")) if f.is_file()}}
        write_json(tmp / METADATA, meta)

        # reload what was written and compare its outputs with the in-memory model's
        reloaded, _ = load_bundle(tmp, device=device, trust_remote_code=True)  # its code is the caller's own
        diff = _max_abs_diff(_outputs(model, batch, task_spec), _outputs(reloaded, batch, task_spec))
        meta["parity"] = {"max_abs_diff": jsonable(diff, "parity"), "tolerance": PARITY_TOLERANCE,
                          "passed": diff <= PARITY_TOLERANCE, "device": str(device),
                          "batch_shape": list(batch[task_spec.input_key].shape)}
        write_json(tmp / METADATA, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written bundle left behind; the error propagates
        raise
    publish(tmp, out_dir)  # the previous bundle stays until the new one is in place
    if not meta["parity"]["passed"]:  # also catches NaN outputs
        raise BundleError(f"{out_dir}: the reloaded bundle's outputs differ from the model's by {diff:.3g} "
                          f"(tolerance {PARITY_TOLERANCE:g}); the bundle is marked failed. HINT: the model's "
                          "forward may depend on state outside its parameters and buffers.")
    persist_folder(out_dir, training_config)  # a bundle inside the run folder is copied to persist_dir too
    return out_dir


def load_bundle(path, device="cpu", *, trust_remote_code: bool = False, strict: bool = True):
    """Verify a bundle's files, rebuild its model and load the weights (safetensors, no pickle).

    Loading runs no code from the bundle unless trust_remote_code=True (see trainbook.export.trust):
    built-in models need none; a model_code.py in the bundle, or a module not imported yet, is refused.

    Args:
        path: the bundle folder. device: where to put the model.
        trust_remote_code: allow importing the bundle's model_code.py (or a module it names).
        strict: files that metadata.json does not list are an error (False: a warning).
    Returns:
        (model in eval mode, meta): meta is metadata.json plus `task_spec` (TaskSpec),
        `training_config` (TrainingConfig), `model_config` (dict), `reference_profile` (dict or
        None), `tokenizer` (text tasks: the Tokenizer, from tokenizer.json unless bytes; else None)
        and `bundle_dir` (Path).
    Raises:
        BundleError: a missing, modified, truncated, unreadable or unlisted file (named), an
            unknown format, code that would run untrusted, a bundle whose parity check failed, or
            weights that do not fit the rebuilt model.
    """
    bundle = Path(path)
    if not bundle.is_dir() and bundle.name and not bundle.name.startswith("."):
        recover(bundle)  # a replace interrupted between its renames leaves the bundle beside its place
    meta = verified_metadata(bundle, strict=strict)
    if meta["parity"] is not None and not meta["parity"]["passed"]:
        raise BundleError(f"{bundle}: this bundle failed its parity check at export (max abs diff "
                          f"{meta['parity']['max_abs_diff']}); refusing to load it. HINT: re-export.")
    model_config = read_json(bundle, MODEL_CONFIG)
    if not isinstance(model_config, dict):
        raise BundleError(f"{bundle / MODEL_CONFIG}: must hold a JSON object; got {type(model_config).__name__}")
    task_spec = read_record(bundle, TASK_SPEC, TaskSpec.from_dict)
    training_config = read_record(bundle, TRAINING_CONFIG, TrainingConfig.from_dict)
    check_trust(model_config, bundle, trust_remote_code)
    check_model_size(model_config, bundle)
    try:
        model = build_model(model_config, bundle)
    except (KeyError, TypeError, ValueError) as e:  # a record with missing or wrong-typed entries
        raise BundleError(f"{bundle / MODEL_CONFIG}: cannot rebuild the model from it ({type(e).__name__}: {e})") from None
    load_weights(model, bundle / WEIGHTS)
    model.to(device).eval()
    meta.update(task_spec=task_spec, training_config=training_config, model_config=model_config,
                reference_profile=read_json(bundle, REFERENCE), bundle_dir=bundle,
                tokenizer=_bundle_tokenizer(bundle, task_spec))
    return model, meta


def _bundle_tokenizer(bundle: Path, spec: TaskSpec):
    """The bundle's tokenizer (registered, so tokenizer_for(spec) finds it); bytes when it has none."""
    if spec.modality != "text":
        return None
    from ..data import Tokenizer

    if not spec.tokenizer_sha:
        return Tokenizer("byte")
    if not (bundle / TOKENIZER).is_file():
        raise BundleError(f"{bundle / TOKENIZER}: missing; the model was trained with tokenizer {spec.tokenizer!r}. "
                          "HINT: copy the whole bundle folder, or re-export it")
    tok = Tokenizer.from_file(bundle / TOKENIZER, spec.tokenizer)
    if tok.sha != spec.tokenizer_sha:
        raise BundleError(f"{bundle / TOKENIZER}: is not the tokenizer the model was trained with (sha256 "
                          f"{tok.sha[:12]}..., task_spec.json says {spec.tokenizer_sha[:12]}...)")
    return tok


def check_drift(bundle_path, new_data, sample_size: int | None = None, *, trust_remote_code: bool = False):
    """Profile new data and compare it with the bundle's training reference: the production drift check.

    Args:
        bundle_path: an export bundle exported with a reference_profile.
        new_data: a dataset or list of examples (like `data.current`), or a path read the way
            inference.py reads it (lm: a text file cut into max_seq_len-byte windows).
        sample_size: passed to profile_dataset.
        trust_remote_code: passed to load_bundle (a bundle whose model is code inside it needs True).
    Returns:
        DriftReport from `trainbook.drift.compare_profiles(reference, current)`.
    Raises:
        BundleError: the bundle has no reference profile (or any load_bundle error).
    """
    model, meta = load_bundle(bundle_path, trust_remote_code=trust_remote_code)
    reference, spec = meta["reference_profile"], meta["task_spec"]
    if reference is None:
        raise BundleError(f"{bundle_path}: {REFERENCE} is empty; nothing to compare with. HINT: export with "
                          "reference_profile=tb.profile_dataset(data.train, spec, model=model)")
    from .. import drift

    if isinstance(new_data, (str, Path)):
        from .inference import read_examples

        new_data = read_examples(Path(new_data), spec)
    # model features only when the reference has them; for classification they need labels (the loss),
    # so unlabelled production data is profiled without the model and compare_profiles names what it skips
    labelled = len(new_data) > 0 and spec.label_key in new_data[0]
    use_model = reference.get("model") is not None and (spec.kind == "lm" or labelled)
    current = drift.profile_dataset(new_data, spec, model=model if use_model else None, sample_size=sample_size)
    return drift.compare_profiles(reference, current)


def export_trained(trainer, result, *, reference_profile: dict | None = None) -> str:
    """The Trainer's end-of-training export: the best checkpoint's weights into <run_dir>/bundle.

    Args:
        trainer: the Trainer (its model, cfg and spec). result: its TrainResult.
        reference_profile: optional drift reference (the Trainer does not keep the data).
    Returns:
        The bundle path as a string.
    """
    model = copy.deepcopy(trainer.model)
    weights = "final (no best checkpoint)"
    if result.best_checkpoint:
        state = torch.load(result.best_checkpoint, map_location=_device_of(model), weights_only=True)
        model.load_state_dict(state["model"])
        weights = f"best checkpoint {Path(result.best_checkpoint).name} (epoch {result.best_epoch})"
    else:
        warnings.warn("no best checkpoint was written; exporting the final weights", RuntimeWarning, stacklevel=2)
    final = {k: v for k, v in result.final.items() if isinstance(v, (int, float))}
    metrics = {"best_metric_name": result.best_metric_name, "best_metric": result.best_metric,
               "best_epoch": result.best_epoch, "total_steps": result.total_steps, "weights": weights,
               "final": final}
    path = export_bundle(model, trainer.cfg, trainer.spec, Path(result.run_dir) / "bundle",
                         reference_profile=reference_profile, metrics=metrics, formats=trainer.cfg.export_formats)
    print(f"exported bundle to {path} ({weights})")
    return str(path)


def _unwrap(model):
    if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return model


def _device_of(model) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


# --- parity and torch.export ---

def _example_batch(example_batch, spec: TaskSpec, device) -> dict:
    if example_batch is None:  # random inputs shaped by the spec; the second text row is padded
        g = torch.Generator().manual_seed(0)
        if spec.modality == "vision":
            shape = (spec.channels, spec.image_size, spec.image_size)
            example_batch = [{spec.input_key: torch.rand(shape, generator=g), spec.label_key: 0} for _ in range(2)]
        else:
            example_batch = [{spec.input_key: torch.randint(0, spec.vocab_size, (min(n, spec.max_seq_len),),
                                                            generator=g), spec.label_key: 0} for n in (16, 8)]
    if isinstance(example_batch, torch.Tensor):
        example_batch = {spec.input_key: example_batch}
    batch = dict(example_batch) if isinstance(example_batch, dict) else collator_for(spec)(list(example_batch))
    if spec.input_key not in batch:
        raise ValueError(f"example_batch has no {spec.input_key!r} (keys: {sorted(batch)})")
    return {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor) and k != spec.label_key}


@torch.no_grad()
def _outputs(model, batch: dict, spec: TaskSpec) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return make_forward(model, spec)(batch)
    finally:
        model.train(was_training)


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


class _Logits(torch.nn.Module):
    """(inputs, attention_mask) -> logits: the signature torch.export records in model.pt2."""

    def __init__(self, model, spec: TaskSpec):
        super().__init__()
        self.model, self.key, self.forward_fn = model, spec.input_key, make_forward(model, spec)

    def forward(self, inputs, attention_mask=None):
        batch = {self.key: inputs} if attention_mask is None else {self.key: inputs, "attention_mask": attention_mask}
        return self.forward_fn(batch)


def _torch_export(model, batch: dict, spec: TaskSpec, path: Path) -> dict:
    keys = [spec.input_key] + (["attention_mask"] if "attention_mask" in batch else [])
    args = tuple(batch[k] for k in keys)
    dims = ({0: torch.export.Dim.AUTO, 1: torch.export.Dim.AUTO} if spec.modality == "text"
            else {0: torch.export.Dim.AUTO})
    was_training = model.training
    model.eval()
    try:
        program = torch.export.export(_Logits(model, spec), args, dynamic_shapes=tuple(dims for _ in keys))
        with torch.no_grad():
            diff = _max_abs_diff(_outputs(model, batch, spec), program.module()(*args))
        torch.export.save(program, str(path))
    except Exception as e:  # export support varies by model; the failure is recorded and warned, not hidden
        warnings.warn(f"torch.export failed, bundle has no {PROGRAM}: {type(e).__name__}: {str(e)[:300]}",
                      RuntimeWarning, stacklevel=4)
        return {"status": "failed", "error": f"{type(e).__name__}: {str(e)[:2000]}"}
    finally:
        model.train(was_training)
    return {"status": "ok", "file": PROGRAM, "inputs": keys, "max_abs_diff": diff,
            "dynamic": "batch" + (" and sequence" if spec.modality == "text" else "") + " dims (Dim.AUTO)"}
