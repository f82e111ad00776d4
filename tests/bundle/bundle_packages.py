"""Helpers shared by the bundle tests: the clouds, a package's zip entry names, unpacking a package."""

from __future__ import annotations

import zipfile
from pathlib import Path

from infra.bundle import Bundle

CLOUDS = ("gcp", "aws", "azure")


def zip_names(package: Bundle) -> list[str]:
    with zipfile.ZipFile(package.zip_path) as archive:
        return archive.namelist()


def unpack(package: Bundle, into: Path) -> Path:
    """Extract the zip (what the cloud receives), not dist/<cloud>/, into an empty directory."""
    into.mkdir()
    with zipfile.ZipFile(package.zip_path) as archive:
        archive.extractall(into)
    return into
