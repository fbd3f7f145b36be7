"""transformers models for a task: `hf:<hub-name-or-folder>` through the Auto class the task needs.

    model = load_hf_model("./my-gpt2", TaskSpec.preset("lm"))      # a save_pretrained folder

lm -> AutoModelForCausalLM, text classification -> AutoModelForSequenceClassification, vision
classification -> AutoModelForImageClassification. A model whose vocabulary or number of labels
differs from the task is built with the task's (those layers start fresh, and a line says so);
positions, image size or channels that cannot match raise an error naming both values. Export
rebuilds transformers models with `build_from_config` (from_config, no pickle).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import ModelSourceError

AUTO_CLASSES = {("text", "lm"): "AutoModelForCausalLM",
                ("text", "classification"): "AutoModelForSequenceClassification",
                ("vision", "classification"): "AutoModelForImageClassification"}
# Auto classes tried, in order, to name the class of a transformers model built directly (e.g. GPT2LMHeadModel(config))
KNOWN_AUTO_CLASSES = (*AUTO_CLASSES.values(), "AutoModelForMaskedLM", "AutoModelForTokenClassification",
                      "AutoModelForQuestionAnswering", "AutoModelForSeq2SeqLM", "AutoModel")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def load_hf_model(name: str, spec, trust_remote_code: bool = False, **kwargs):
    """A transformers model for the task, from a hub name or a local save_pretrained folder.

    Args:
        name: hub name ("gpt2") or folder; a folder with config.json and no weights is built
            from its config with fresh weights.
        spec: the TaskSpec. trust_remote_code: passed to transformers.
        **kwargs: passed to from_pretrained / from_config.
    Raises:
        ModelSourceError: no task_spec, an unreadable config, no Auto class for this model and
            task, or sizes that cannot match the task. ImportError: transformers is missing.
    """
    source = f"hf:{name}"
    if spec is None:
        raise ModelSourceError(f"{source}: needs the task to choose the transformers Auto class. HINT: "
                               f"tb.load_model({source!r}, task_spec=data.spec)")
    transformers = _transformers()
    folder = Path(name).expanduser()
    local = folder.is_dir()
    if local and not (folder / "config.json").is_file():
        raise ModelSourceError(f"{source}: {folder} has no config.json. HINT: write the folder with "
                               "model.save_pretrained(folder)")
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder) if local else name,
                                                         trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelSourceError(f"{source}: cannot read its config: {str(e).splitlines()[0]}. HINT: check the name "
                               "(a hub name needs network access) or pass a folder written by save_pretrained") from None
    auto_name = AUTO_CLASSES[(spec.modality, spec.kind)]
    auto = getattr(transformers, auto_name)
    if type(config) not in auto._model_mapping and not getattr(config, "auto_map", None):
        raise ModelSourceError(f"{source}: transformers has no {auto_name} for a {config.model_type!r} model, which "
                               f"task {spec.name!r} needs. HINT: choose a model made for this task")
    changes = task_changes(config, spec, source)
    for key, (old, new) in changes.items():
        print(f"{source}: {key} {old} -> {new} to match the task; those weights start fresh")
    settings = {key: new for key, (old, new) in changes.items()}
    if spec.kind == "classification" and spec.class_names:
        settings["id2label"] = dict(enumerate(spec.class_names))
        settings["label2id"] = {label: i for i, label in enumerate(spec.class_names)}
    has_weights = not local or any(p.name.endswith(WEIGHT_SUFFIXES) for p in folder.iterdir())
    try:
        if has_weights:
            model = auto.from_pretrained(str(folder) if local else name, trust_remote_code=trust_remote_code,
                                         ignore_mismatched_sizes=bool(changes), **settings, **kwargs)
        else:
            print(f"{source}: no weights in {folder}; built from its config.json with fresh weights")
            for key, value in settings.items():
                setattr(config, key, value)
            model = auto.from_config(config, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError, TypeError) as e:
        raise ModelSourceError(f"{source}: {auto_name} could not build it: {str(e).splitlines()[0]}") from None
    model.trainbook_source = {"kind": "hf", "source": source, "path": str(folder.resolve()) if local else None,
                              "auto_class": auto_name, "class_name": type(model).__name__,
                              "changed": {k: list(v) for k, v in changes.items()}, "kwargs": dict(kwargs)}
    return model


def task_changes(config, spec, source: str) -> dict:
    """{setting: (model's, task's)} to apply; raises when the model cannot take the task's shapes."""
    changes = {}
    if spec.modality == "text":
        vocab = getattr(config, "vocab_size", None)
        if vocab is None:
            raise ModelSourceError(f"{source}: its config has no vocab_size, so it cannot be fitted to the task's "
                                   f"{spec.vocab_size} token ids. HINT: choose a text model")
        if vocab != spec.vocab_size:
            changes["vocab_size"] = (vocab, spec.vocab_size)
        positions = next((getattr(config, k) for k in ("n_positions", "max_position_embeddings")
                          if isinstance(getattr(config, k, None), int)), None)
        if positions is not None and positions < spec.max_seq_len:
            raise ModelSourceError(f"{source}: the model takes at most {positions} positions; the task's max_seq_len "
                                   f"is {spec.max_seq_len}. HINT: use max_seq_len <= {positions}")
    else:
        for key, want in (("image_size", spec.image_size), ("num_channels", spec.channels)):
            have = getattr(config, key, None)
            if isinstance(have, int) and have != want:
                raise ModelSourceError(f"{source}: the model takes {key}={have}; the task's images have {want}. "
                                       f"HINT: choose a model for {spec.image_size}x{spec.image_size} images with "
                                       f"{spec.channels} channel(s), or resize the data")
    if spec.kind == "classification" and config.num_labels != spec.num_classes:
        changes["num_labels"] = (config.num_labels, spec.num_classes)
    return changes


def is_transformers_model(model) -> bool:
    transformers = sys.modules.get("transformers")  # a transformers model means transformers is imported
    return transformers is not None and isinstance(model, transformers.PreTrainedModel)


def auto_class_for(model) -> str | None:
    """The Auto class that builds this model's class from its config (None when none does)."""
    source = getattr(model, "trainbook_source", None) or {}
    if source.get("kind") == "hf":
        return source["auto_class"]
    transformers = _transformers()
    for name in KNOWN_AUTO_CLASSES:
        mapping = getattr(transformers, name)._model_mapping
        try:
            if mapping[type(model.config)] is type(model):
                return name
        except KeyError:
            continue
    return None


def build_from_config(auto_name: str, config_dir: Path, class_name: str):
    """Rebuild a transformers model from a folder's config.json through the same Auto class."""
    transformers = _transformers()
    config = transformers.AutoConfig.from_pretrained(str(config_dir))
    model = getattr(transformers, auto_name).from_config(config)
    if type(model).__name__ != class_name:
        raise ModelSourceError(f"{config_dir}: {auto_name} built a {type(model).__name__}, not the exported "
                               f"{class_name}. HINT: install the transformers version the bundle was made with")
    return model


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ImportError("hf: models need the transformers package: pip install transformers") from None
    return transformers
