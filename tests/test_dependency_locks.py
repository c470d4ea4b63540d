"""The two locks agree: serving installs requirements.lock, everything else adds the dev lock
on top, so a package pinned in both must have one version (else the dev install would quietly
change what `make run` tested)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)", flags=re.MULTILINE)


def pins(name: str) -> dict[str, str]:
    return dict(PIN.findall((ROOT / name).read_text()))


def test_the_dev_lock_pins_every_runtime_package_at_the_same_version() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert runtime, "requirements.lock pins nothing"
    assert {
        name: (version, dev.get(name))
        for name, version in runtime.items()
        if dev.get(name) != version
    } == {}


def test_the_runtime_lock_holds_no_dev_tool() -> None:
    runtime = pins("requirements.lock")
    assert {"pytest", "mypy", "ruff", "matplotlib", "schemathesis"} & set(runtime) == set()
