"""A bundle's files: names, JSON reading and writing, sha256 checks of metadata.json's file list.

    meta = verified_metadata(bundle_dir)   # raises BundleError naming the first missing or modified file
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path, PurePosixPath

from .errors import BundleError

BUNDLE_FORMAT = "trainbook-bundle/1"
PARITY_TOLERANCE = 1e-5
WEIGHTS, MODEL_CONFIG, MODEL_CODE = "model.safetensors", "model_config.json", "model_code.py"
TRAINING_CONFIG, TASK_SPEC, REFERENCE = "training_config.json", "task_spec.json", "reference_profile.json"
INFERENCE, PROGRAM, METADATA = "inference.py", "model.pt2", "metadata.json"
TOKENIZER = "tokenizer.json"  # text tasks with a subword tokenizer (task_spec.tokenizer_sha)
REQUIRED = (WEIGHTS, MODEL_CONFIG, TRAINING_CONFIG, TASK_SPEC, REFERENCE, INFERENCE)
FORMATS = ("safetensors", "torch_export")


def verified_metadata(bundle: Path, strict: bool = True) -> dict:
    """metadata.json after checking that every file it lists is present with its sha256.

    Args:
        bundle: the bundle folder.
        strict: files that metadata.json does not list are an error (False: a warning).
    Raises:
        BundleError: naming the first missing, modified or unlisted file.
    """
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a bundle folder (no such directory)")
    meta = read_json(bundle, METADATA)
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BundleError(f"{bundle / METADATA}: format {found!r} is not {BUNDLE_FORMAT!r}")
    files = meta.get("files", {})
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise BundleError(f"{bundle / METADATA}: does not list {', '.join(missing)}; the bundle is incomplete")
    for name, digest in files.items():
        file = bundle / name
        parts = PurePosixPath(name).parts  # model code sits in a sub-folder (model_code/...)
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name or name == METADATA:
            raise BundleError(f"{bundle / METADATA}: invalid file entry {name!r}")
        if not file.is_file():
            raise BundleError(f"{file}: missing from the bundle. HINT: copy the whole bundle folder")
        actual = sha256(file)
        if actual != digest:
            raise BundleError(f"{file}: sha256 mismatch (expected {digest[:16]}..., got {actual[:16]}...); the "
                              "file was modified or truncated after export. HINT: copy the bundle again or re-export")
    _check_unlisted(bundle, set(files) | {METADATA}, strict)
    return meta


def _check_unlisted(bundle: Path, listed: set, strict: bool):
    """Files in the bundle that metadata.json does not list (a planted module or .pyc, say)."""
    extra = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*")
                   if not p.is_dir() and p.relative_to(bundle).as_posix() not in listed)
    if not extra:
        return
    message = (f"{bundle}: holds files that {METADATA} does not list: {', '.join(extra)}; they were not written "
               "by the export. HINT: delete them, or copy the bundle again from its source")
    if strict:
        raise BundleError(message + " (load_bundle(..., strict=False) only warns)")
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json(bundle: Path, name: str):
    path = bundle / name
    if not path.is_file():
        raise BundleError(f"{path}: missing; not a complete trainbook bundle")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); the file is damaged or truncated") from None


def read_record(bundle: Path, name: str, parse):
    """parse(read_json(bundle, name)), with any parse error as a BundleError naming the file."""
    data = read_json(bundle, name)
    try:
        return parse(data)
    except (TypeError, ValueError, KeyError, AttributeError) as e:  # ConfigError is a ValueError
        raise BundleError(f"{bundle / name}: not a valid record ({type(e).__name__}: {e})") from None


def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def jsonable(obj, what: str):
    """obj with non-finite floats as strings; TypeError naming `what` when it cannot be JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v, what) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, what) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return jsonable(obj.item(), what)
    raise TypeError(f"{what} must be JSON-serialisable; found a {type(obj).__name__}")
