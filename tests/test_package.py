"""What a user who installed the package sees of it: its version, and the metadata an index
shows."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import century_ring

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_installed_distributions() -> None:
    """century_ring.__version__ is the version pip installed, which is Cargo.toml's."""
    cargo = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.MULTILINE)
    assert cargo is not None
    assert century_ring.__version__ == metadata.version("century-ring")
    assert century_ring.__version__ == cargo.group(1)


def test_metadata_names_the_documentation_source_and_changelog() -> None:
    urls = dict(
        entry.split(", ", 1) for entry in metadata.metadata("century-ring").get_all("Project-URL")
    )
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    assert urls["Changelog"].endswith("CHANGELOG.md")
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")


def test_classifiers_name_every_python_the_abi3_wheel_covers() -> None:
    """The stable-ABI wheel covers 3.10 onward; the classifiers say so up to 3.14."""
    classifiers = set(metadata.metadata("century-ring").get_all("Classifier"))
    for minor in range(10, 15):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
