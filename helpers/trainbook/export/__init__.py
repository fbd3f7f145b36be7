"""Export bundles: one folder that reloads anywhere and gives the same outputs.

    path = export_bundle(model, cfg, spec, run_dir / "bundle", reference_profile=ref)
    model, meta = load_bundle(path)
"""

from .bundle import check_drift, export_bundle, export_trained, load_bundle
from .errors import BundleError
from .inference import continue_text, predict, read_examples, write_samples

__all__ = ["BundleError", "check_drift", "continue_text", "export_bundle", "export_trained", "load_bundle", "predict",
           "read_examples", "write_samples"]
