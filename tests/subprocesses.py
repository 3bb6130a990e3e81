"""Run Python in a child process from the repository root: a script, ``python -m scratchnet``, or a
script where a package cannot be imported (NumPy, matplotlib), for the parts that must work without it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Put first on sys.meta_path: importing the package or any of its submodules raises ImportError.
BLOCKER = """\
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == {package!r} or name.startswith({package!r} + "."):
            raise ImportError({package!r} + " is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
"""


def run_python(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python args...`` with this interpreter, from the repository root (or ``cwd``, with the
    repository first on the import path); output captured as text. ``env`` adds to (or overrides)
    this process's environment."""
    if cwd is not None:
        env = {**(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT if cwd is None else cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else {**os.environ, **env},
        errors="replace",  # a child writing another encoding than ours is read, not refused
    )


def run_scratchnet(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m scratchnet args...`` (in ``cwd``, when given: a user's own folder)."""
    return run_python("-m", "scratchnet", *args, timeout=timeout, env=env, cwd=cwd)


def run_without(package: str, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c script args...`` with ``package`` unimportable: the script (dedented here) runs after
    the blocker, with ``sys`` imported."""
    return run_python("-c", BLOCKER.format(package=package) + textwrap.dedent(script), *args, timeout=timeout)
