"""The export package's error type."""


class BundleError(RuntimeError):
    """A bundle cannot be written or loaded; the message names the file and the fix."""
