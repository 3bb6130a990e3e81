"""Shared pytest fixtures."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# A test run started in the background by a non-interactive shell (`nohup`, `cmd &`) begins with SIGINT
# ignored, and so would every process it starts. The Ctrl-C tests (this process and children) need
# Python's default handler, which a child gets back at exec once this process no longer ignores it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Property tests draw the same examples on every run (a red CI must mean a real change, never an
# unlucky draw); HYPOTHESIS_PROFILE=explore draws new ones each run, for hunting bugs locally.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real dataset directory: $SCRATCHNET_DATA_DIR, else ../shared/data next to the repository; skip if neither."""
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    pytest.skip("no real dataset directory (set SCRATCHNET_DATA_DIR or provide ../shared/data)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how close the two backends came in the cross-check tests that ran."""
    module = sys.modules.get("test_crosscheck")
    seen = getattr(module, "LARGEST_SEEN", None)
    if seen:
        terminalreporter.write_line(
            "cross-check: largest relative difference between the backends: "
            f"{float(seen['value']):.2e} ({seen['tensor']})"
        )
