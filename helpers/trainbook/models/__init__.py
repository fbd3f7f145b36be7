"""Models: the built-in ones, the user's model files, and the adapter the engine trains through.

    model = build_model(TaskSpec.preset("lm"), size="tiny"); forward = make_forward(model, spec)
"""

from .adapter import make_forward
from .builtin import ARCHS, SIZES, ModelConfig, build_from_config, build_model, count_parameters, model_config_for
from .loading import load_model_file

__all__ = ["ARCHS", "SIZES", "ModelConfig", "build_from_config", "build_model", "count_parameters", "load_model_file",
           "make_forward", "model_config_for"]
