"""Google Drive mounting, simulated: the mountpoint becomes a link to a local folder standing in for Drive.

    COLAB_STUB_DRIVE_DIR=/tmp/drive python -c "from google.colab import drive; drive.mount('/content/drive')"
    # -> /content/drive/MyDrive is /tmp/drive/MyDrive; prints "Mounted at /content/drive"

Follows google.colab.drive.mount's contract (googlecolab/colabtools, google/colab/drive.py):
the signature mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False); a
space in the mountpoint is a ValueError; an already mounted Drive (`<mountpoint>/My Drive` is a
folder) prints "Drive already mounted at ..." and returns unless force_remount; the mountpoint
must not be a symlink, must not already contain files, must be a folder or not exist, and must
be in a folder that exists (each a ValueError with Colab's message); success prints
"Mounted at <mountpoint>". Drive's root shows `MyDrive` (and answers to `My Drive`).

The Drive contents live in COLAB_STUB_DRIVE_DIR, so they outlive a simulated runtime reset: a test
deletes the mountpoint link (as a reset unmounts Drive) and the next mount finds the same files.
"""

import os

from . import _record

DRIVE_DIR_ENV = "COLAB_STUB_DRIVE_DIR"


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    """Mount the stand-in Drive at `mountpoint` (a symlink to COLAB_STUB_DRIVE_DIR).

    Args:
        mountpoint: the folder to mount Drive at, e.g. "/content/drive".
        force_remount: unmount first and mount again, even when Drive is mounted there.
        timeout_ms: accepted for signature compatibility.
        readonly: accepted for signature compatibility (the stand-in Drive is writable).

    Raises:
        ValueError: a mountpoint Colab would refuse, with Colab's message.
        RuntimeError: COLAB_STUB_DRIVE_DIR is not set (the test did not say where Drive lives).
    """
    _record("drive.mount", mountpoint, force_remount, readonly)
    if " " in mountpoint:
        raise ValueError("Mountpoint must not contain a space.")
    mountpoint = os.path.expanduser(mountpoint)
    if not force_remount and os.path.isdir(os.path.join(mountpoint, "My Drive")):
        print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, "
              f'call drive.mount("{mountpoint}", force_remount=True).')
        return
    backing = os.environ.get(DRIVE_DIR_ENV)
    if not backing:
        raise RuntimeError(f"{DRIVE_DIR_ENV} is not set. HINT: the test sets it to the folder that stands in "
                           "for Google Drive")
    if force_remount and os.path.islink(mountpoint) and os.readlink(mountpoint) == backing:
        os.unlink(mountpoint)   # Colab unmounts first (umount -f) before it checks the mountpoint
    if os.path.islink(mountpoint):
        raise ValueError("Mountpoint must not be a symlink")
    if os.path.isdir(mountpoint) and os.listdir(mountpoint):
        raise ValueError("Mountpoint must not already contain files")
    if not os.path.isdir(mountpoint) and os.path.exists(mountpoint):
        raise ValueError("Mountpoint must either be a directory or not exist")
    normed = os.path.normpath(mountpoint)
    if "/" in normed and not os.path.exists(os.path.dirname(normed)):
        raise ValueError("Mountpoint must be in a directory that exists")
    os.makedirs(os.path.join(backing, "MyDrive"), exist_ok=True)
    if not os.path.lexists(os.path.join(backing, "My Drive")):
        os.symlink("MyDrive", os.path.join(backing, "My Drive"))
    if os.path.isdir(mountpoint):
        os.rmdir(mountpoint)   # an empty folder: the mount covers it
    os.symlink(backing, mountpoint)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms: int = 86400000) -> None:
    """Record the unmount; the folder is left in place."""
    _record("drive.flush_and_unmount")
