"""What `pip install .` installs: every package of streamdump (the editable install the tests run
on would not notice one left out)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_the_install_takes_every_package_under_streamdump() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "streamdump").rglob("__init__.py")
    }
    packages = config.get("packages")
    if isinstance(packages, list):
        installed = set(packages)
    else:
        installed = set(find_packages(str(ROOT), include=packages["find"]["include"]))
    assert on_disk <= installed, f"left out of the install: {sorted(on_disk - installed)}"
    assert "*" in config["package-data"]["streamdump.encodings"]  # tiktoken's encodings ship with it
