"""Test-only stand-in for Colab's `google.colab` package; tests put it on a kernel's PYTHONPATH.

    PYTHONPATH=tests/colab_stub COLAB_STUB_LOG=/tmp/calls.jsonl python -c "from google.colab import userdata"

Only the pieces the notebook (and wandb inside Colab) touch are here: userdata.get, drive.mount,
output.enable_custom_widget_manager and _message.blocking_request. Each call appends one JSON line
{"call": "<module>.<function>", "args": [...]} to the file named by COLAB_STUB_LOG, so a test can
assert which Colab APIs a notebook run used. Secret values are never recorded, only their names.

`google/` has no __init__.py on purpose: it stays an implicit namespace package, so the real
`google.protobuf` (which wandb needs) is still found in site-packages beside this stub.
The stub refuses to import without COLAB_STUB_LOG, so it cannot pass for Colab by accident.
"""

import json
import os

LOG_ENV = "COLAB_STUB_LOG"

if not os.environ.get(LOG_ENV):
    raise ImportError(f"google.colab here is the test stub in tests/colab_stub and {LOG_ENV} is not set. "
                      "HINT: it is meant for tests/test_colab.py only; outside Colab, remove tests/colab_stub "
                      "from PYTHONPATH")


def _record(call: str, *args) -> None:
    """Append one call record to the COLAB_STUB_LOG file."""
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"call": call, "args": [str(a) for a in args]}) + "\n")


from . import _message, drive, output, userdata  # noqa: E402, F401 - Colab's package imports these too

__all__ = ["drive", "output", "userdata"]
