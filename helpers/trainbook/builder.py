"""The fluent TrainingConfig builder: presets and grouped with_* setters.

    cfg = TrainingConfigBuilder.preset("quick").with_training(epochs=3).build()
"""

from __future__ import annotations

import dataclasses

from .config import ConfigError, TrainingConfig, suggest

FIELD_GROUPS = {
    "with_run": ("run_name", "output_dir", "seed", "deterministic", "persist_dir", "on_config_change"),
    "with_training": ("epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio",
                      "warmup_steps", "max_steps", "gradient_accumulation_steps"),
    "with_optimizer": ("optimizer", "learning_rate", "weight_decay", "lr_schedule", "warmup_ratio",
                       "warmup_steps", "min_lr_ratio", "max_grad_norm"),
    "with_precision": ("precision", "compile", "device", "num_workers", "deterministic"),
    "with_checkpointing": ("checkpoint_dir", "save_every_n_epochs", "save_every_n_steps", "keep_last",
                           "resume", "persist_dir", "on_config_change", "eval_every_n_epochs", "early_stopping_patience",
                           "early_stopping_metric", "early_stopping_mode", "early_stopping_min_delta"),
    "with_tracking": ("wandb_mode", "wandb_project", "wandb_entity", "log_every_n_steps", "progress_bar"),
    "with_export": ("export_bundle", "export_formats"),
    "with_distributed": ("strategy",),
}

_PRESETS = {
    "quick": dict(epochs=1, batch_size=16, learning_rate=1e-3, warmup_ratio=0.1, log_every_n_steps=5),
    "colab-gpu": dict(epochs=5, batch_size=64, learning_rate=3e-4, warmup_ratio=0.05, precision="auto",
                      num_workers="auto", save_every_n_epochs=1, export_bundle=True),
    "full": dict(epochs=20, batch_size=32, learning_rate=3e-4, warmup_ratio=0.05, early_stopping_patience=3,
                 save_every_n_epochs=1, keep_last=3, export_bundle=True),
}


class TrainingConfigBuilder:
    """Fluent, immutable construction of a TrainingConfig.

        cfg = (TrainingConfigBuilder.from_config(base)
               .with_training(learning_rate=1e-4, batch_size=16).build())

    Every with_* returns a new builder; it is dataclasses.replace over the fields of its group.
    """

    def __init__(self, config: TrainingConfig | None = None):
        self._config = config if config is not None else TrainingConfig()

    @classmethod
    def from_config(cls, config: TrainingConfig) -> "TrainingConfigBuilder":
        if not isinstance(config, TrainingConfig):
            raise TypeError(f"from_config expects a TrainingConfig; got {type(config).__name__}")
        return cls(config)

    @classmethod
    def preset(cls, name: str) -> "TrainingConfigBuilder":
        """A builder for one of the presets: 'quick' (CPU smoke run), 'colab-gpu', 'full'."""
        if name not in _PRESETS:
            raise ConfigError([f"preset must be one of {', '.join(map(repr, _PRESETS))}; "
                               f"got {name!r}{suggest(name, _PRESETS)}"])
        return cls(TrainingConfig(**_PRESETS[name]))

    def _replace(self, group: str, kwargs: dict) -> "TrainingConfigBuilder":
        allowed = FIELD_GROUPS[group]
        for key in kwargs:
            if key not in allowed:
                where = next((g for g, keys in FIELD_GROUPS.items() if key in keys), None)
                hint = f"; it belongs to {where}()" if where else suggest(key, allowed)
                raise TypeError(f"{group}() got an unexpected keyword argument {key!r}{hint}")
        return TrainingConfigBuilder(dataclasses.replace(self._config, **kwargs))

    def with_run(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_run", kwargs)

    def with_training(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_training", kwargs)

    def with_optimizer(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_optimizer", kwargs)

    def with_precision(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_precision", kwargs)

    def with_checkpointing(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_checkpointing", kwargs)

    def with_tracking(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_tracking", kwargs)

    def with_export(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_export", kwargs)

    def with_distributed(self, **kwargs) -> "TrainingConfigBuilder":
        return self._replace("with_distributed", kwargs)

    def build(self) -> TrainingConfig:
        return self._config


PRESET_NAMES = tuple(_PRESETS)
