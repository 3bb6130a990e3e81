"""Shared by the tests of ``scratchnet serve`` on a language model: two tiny GPTs trained here by
``scratchnet train`` for 30 steps (one on names, one document a line; one on running text), once per
test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from subprocesses import run_scratchnet

LAYERS = (
    "embedding(16), positions(16), residual(rmsnorm, attention(4)), residual(rmsnorm, dense(32), relu, dense(16)), "
    "rmsnorm"
)
NAMES_TEXT = (
    "emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily elizabeth mila ella "
    "avery sofia camila aria scarlett victoria madison luna grace chloe penelope layla riley zoey nora lily "
    "eleanor hannah lillian addison aubrey ellie stella natalie zoe leah hazel violet aurora savannah audrey "
    "brooklyn bella claire skylar lucy paisley everly anna caroline nova genesis emilia kennedy samantha maya"
)
RUNNING = "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer\n" * 12
_trained: dict[str, Path] = {}


def text_model(layout: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT of ``layout`` ("documents": names; "running": a line of Hamlet), trained once."""
    if layout not in _trained:
        folder = tmp_path_factory.mktemp(f"serve-text-{layout}")
        data = folder / "tmp.txt"
        data.write_text("\n".join(NAMES_TEXT.split()) + "\n" if layout == "documents" else RUNNING)
        out = folder / f"{layout}.json"
        result = run_scratchnet(
            "train", "--data", str(data), "--layout", layout, "--layers", LAYERS, "--steps", "30",
            "--context", "12" if layout == "documents" else "16", "--no-check", "--seed", "3", "--out", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        _trained[layout] = out
    return _trained[layout]
