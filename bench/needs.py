"""One line, not a traceback, when a bench script is run by a Python without the project
(the system's `python3` rather than the clone's venv)."""

from __future__ import annotations

import importlib.util
import sys


def project_venv(script: str, *modules: str) -> None:
    for name in ("indexer", "mutagen", "xxhash", *modules):
        if importlib.util.find_spec(name) is None:
            sys.exit(f"{script}: {name} is not installed for {sys.executable}; run it with the "
                     f"clone's venv (set up as the README's Quick start says): "
                     f".venv/bin/python {script} ...")
