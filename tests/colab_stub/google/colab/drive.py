"""Google Drive mounting, simulated: records the call and creates the folders Colab would.

    drive.mount("/content/drive")   # -> /content/drive/MyDrive exists afterwards
"""

import os

from . import _record


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    """Record the mount and create `mountpoint`/MyDrive, as Colab shows a mounted Drive.

    Args:
        mountpoint: the folder to mount Drive at, e.g. "/content/drive".
        force_remount: accepted for signature compatibility.
        timeout_ms: accepted for signature compatibility.
        readonly: accepted for signature compatibility.
    """
    _record("drive.mount", mountpoint, force_remount, readonly)
    os.makedirs(os.path.join(os.path.expanduser(mountpoint), "MyDrive"), exist_ok=True)


def flush_and_unmount(timeout_ms: int = 86400000) -> None:
    """Record the unmount; the folder is left in place."""
    _record("drive.flush_and_unmount")
