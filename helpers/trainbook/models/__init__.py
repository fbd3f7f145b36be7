"""Models: the built-in ones, the user's own (files, folders, URLs, Gists, hf:), and the adapter the engine trains through.

    model = build_model(TaskSpec.preset("lm"), size="tiny"); forward = make_forward(model, spec)
    model = load_model("gist:1a2b3c", trust_remote_code=True)
"""

from .adapter import make_forward
from .builtin import ARCHS, SIZES, ModelConfig, build_from_config, build_model, count_parameters, model_config_for
from .errors import ModelSourceError
from .loading import load_model, load_model_file

__all__ = ["ARCHS", "SIZES", "ModelConfig", "ModelSourceError", "build_from_config", "build_model", "count_parameters",
           "load_model", "load_model_file", "make_forward", "model_config_for"]
