"""Issue 15, item 8: every Python block of the README and of docs/ runs as written.

Each ```python block is collected from the Markdown and run on its own, in a fresh interpreter, in
an empty folder, with SCRATCHNET_DATA_DIR set to the real data (blocks that train or load a dataset
are skipped when there is none). A block is skipped only when the line before its fence is
``<!-- docs-test: skip (the reason) -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from subprocesses import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
NEEDS_DATA = ("train(", "resume(", "load_dataset(")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence, 1-based
    code: str
    skip: str | None  # the reason, for a block marked to be skipped

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def python_blocks(document: Path) -> list[Block]:
    """The ```python blocks of ``document``, with the skip marker on the line before each, if any."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
            marker = SKIP.search(lines[start - 1]) if start > 0 else None
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append(Block(document, start + 1, code, marker.group("reason") if marker else None))
            index = end
        index += 1
    return blocks


BLOCKS = [block for document in DOCUMENTS for block in python_blocks(document)]


def real_data() -> Path | None:
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def test_the_documents_have_python_blocks() -> None:
    names = {block.document.name for block in BLOCKS}
    assert {"README.md", "model-files.md", "training.md", "errors.md"} <= names
    assert sum(block.skip is not None for block in BLOCKS) <= 1  # skipping is the exception


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_a_python_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.name} is marked: {block.skip}")
    data = real_data()
    if data is None and any(call in block.code for call in NEEDS_DATA):
        pytest.skip("the block needs the real data (set SCRATCHNET_DATA_DIR or provide ../shared/data)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if data is not None:
        env["SCRATCHNET_DATA_DIR"] = str(data)
    done = subprocess.run(
        [sys.executable, "-c", block.code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{block.name} failed:\n{block.code}\n{done.stderr}"
