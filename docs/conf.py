"""Sphinx configuration for the Century Ring documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` after installing the package
(``pip install '.[docs]'``): autodoc imports ``century_ring`` to read its docstrings, so the
compiled core must be importable.
"""

from __future__ import annotations

import century_ring

project = "Century Ring"
author = "The Century Ring developers"
copyright = "2026, The Century Ring developers"

release = century_ring.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

autodoc_member_order = "bysource"

# Source files and directories that are not part of the site.
exclude_patterns = ["_build"]

# Code blocks without a language are Python.
highlight_language = "python3"

html_theme = "alabaster"
html_title = f"Century Ring {release}"
