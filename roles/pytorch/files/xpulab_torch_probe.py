"""Print what the venv's torch is and which XPU devices it sees, as one JSON line.

Run with the venv's python. Read-only. Exits 0 even when torch does not
import (the JSON then has "error"), so the role can say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from typing import Any


def torch_record() -> dict[str, str]:
    """Where torch's dist-info RECORD is and its sha256: another build of the same version has another RECORD."""
    try:
        files = metadata.distribution("torch").files or []
    except metadata.PackageNotFoundError:
        return {}
    entry = next((f for f in files if f.parent.name.endswith(".dist-info")), None)  # RECORD lists the dist-info
    if entry is None:
        return {}
    path = os.path.realpath(os.path.join(os.path.dirname(str(entry.locate())), "RECORD"))
    with open(path, "rb") as handle:
        return {"torch_record": path, "torch_record_sha256": hashlib.sha256(handle.read()).hexdigest()}


def probe() -> dict[str, Any]:
    result: dict[str, Any] = {"python_version": platform.python_version(), "executable": sys.executable}
    try:
        import torch  # noqa: PLC0415 - the import is what is probed
    except Exception as error:  # noqa: BLE001 - any import failure is reported
        result["error"] = f"import torch failed: {type(error).__name__}: {error}"
        return result
    version = getattr(torch, "version", None)
    xpu_version = getattr(version, "xpu", None)
    cuda_version = getattr(version, "cuda", None)
    hip_version = getattr(version, "hip", None)
    build = "xpu" if xpu_version else "cuda" if cuda_version else "rocm" if hip_version else "cpu"
    result.update({
        "torch_version": str(torch.__version__),
        "build": build,
        "xpu_version": str(xpu_version) if xpu_version else None,
        "cuda_version": str(cuda_version) if cuda_version else None,
        "xpu_available": False,
        "xpu_device_count": 0,
        "xpu_devices": [],
        **torch_record(),
    })
    xpu = getattr(torch, "xpu", None)
    if xpu is None:
        return result
    try:
        result["xpu_available"] = bool(xpu.is_available())
        result["xpu_device_count"] = int(xpu.device_count())
        result["xpu_devices"] = [str(xpu.get_device_name(i)) for i in range(result["xpu_device_count"])]
    except Exception as error:  # noqa: BLE001 - a broken runtime is reported, not raised
        result["xpu_error"] = f"{type(error).__name__}: {error}"
    return result


if __name__ == "__main__":
    print(json.dumps(probe(), sort_keys=True))
