"""The documentation builds in anyone's Sphinx project: the user's own page for the low-level
API (docs/sync-api.rst) on its own, and every public docstring, with autodoc and ``-W``
against the installed package, without this repository's other pages or configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install '.[test]')")

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The least configuration a project using autodoc has.
BARE_CONF = 'extensions = ["sphinx.ext.autodoc"]\n'

#: Every public name, documented with its members, as another project might include them.
EVERY_DOCSTRING = """\
Century Ring
============

.. automodule:: century_ring
   :members:
   :undoc-members:
"""


def build_alone(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """Builds ``page`` as the only page of a bare Sphinx project, warnings as errors."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text(BARE_CONF)
    (source / "index.rst").write_text(page)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            str(source),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_seed_page_builds_on_its_own(tmp_path: Path) -> None:
    """docs/sync-api.rst, the user's page, builds alone: no docstring it pulls in links a page
    that only this repository has."""
    built = build_alone(tmp_path, (DOCS / "sync-api.rst").read_text())
    assert built.returncode == 0, built.stderr


def test_every_public_docstring_builds_in_a_bare_project(tmp_path: Path) -> None:
    """Every name century_ring exports, with its members, builds in a project of its own."""
    built = build_alone(tmp_path, EVERY_DOCSTRING)
    assert built.returncode == 0, built.stderr
