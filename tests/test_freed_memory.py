"""The command line lets glibc reuse freed large blocks (scratchnet.cli.keep_freed_memory,
docs/performance.md): a large temporary allocated and freed again and again faults its pages in
once, not every time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from scratchnet.cli import keep_freed_memory
    if sys.argv[1] == "keep":
        keep_freed_memory()
    def step():  # a training step's temporaries: two of 2 MB and one of 1 MB, freed together
        first, second, third = np.ones(1 << 18), np.ones(1 << 18), np.ones(1 << 17)
        del first, second, third
    step()  # the first time faults its pages in either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(mode: str, **environment: str) -> int:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings are Linux's")
def test_freed_large_blocks_are_reused_and_a_users_malloc_settings_win() -> None:
    default, kept = faults("default"), faults("keep")
    # 40 steps of 1,280 pages: by default glibc trims the freed top of its heap (above twice its
    # adaptive threshold), so each step faults its pages in again (measured 49,924); kept, none
    assert default > 40 * 1000
    assert kept < 1000
    # a user who tuned malloc keeps their setting: here the default threshold, so faults again
    assert faults("keep", MALLOC_ARENA_MAX="2") > 40 * 1000
