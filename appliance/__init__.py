"""PBX appliance firmware: SIP, media, dial plan, analog lines and the setup page."""

import sys

__version__ = "0.1.0"


def _import_sqlite_utils_without_numpy() -> None:
    """sqlite-utils imports numpy whenever it is installed, only to store numpy scalars (which
    this firmware never does), and that cost the core 10 MiB of its idle RSS budget. Import it
    once with numpy hidden; numpy stays importable for the code that needs it (in-band DTMF
    detection), which imports it when it is used."""
    if "sqlite_utils" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["numpy"]


_import_sqlite_utils_without_numpy()
