"""``scratchnet check``: the table, the exit status, and its usage errors."""

from __future__ import annotations

from typing import Any

import pytest
from subprocesses import run_scratchnet

from scratchnet.cli import main


def test_check_passes_and_prints_every_tensor(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", "--layers", "6,5,3", "--activation", "tanh"])
    out = capsys.readouterr().out
    assert status == 0
    for name in ("forward", "loss", "grad 0.weight", "grad 2.bias", "after 3 steps 0.weight"):
        assert name in out
    assert "passed in" in out and "FAIL" not in out


def test_check_exits_1_when_the_backends_disagree(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from scratchnet.vectorized.activations import ReLU

    # A wrong derivative: lets the gradient through for slightly negative z too.
    monkeypatch.setattr(ReLU, "backward", lambda self, g: np.where(self.inputs >= -0.1, g, 0.0))
    status = main(["check", "--layers", "6,8,3"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "FAILED" in out


def test_python_dash_m_and_usage_errors() -> None:
    ok = run_scratchnet("check", "--layers", "4,3,2")
    assert ok.returncode == 0, ok.stderr
    bad = run_scratchnet("check", "--layers", "4,x")
    assert bad.returncode == 2
    assert "--layers" in bad.stderr and "Traceback" not in bad.stderr
    help_text = run_scratchnet("--help")
    assert help_text.returncode == 0 and "check" in help_text.stdout


def test_check_large_architecture_samples_the_gradients(capsys: Any) -> None:
    assert main(["check", "--layers", "784,32,10", "--batch", "2", "--steps", "1"]) == 0


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "inspect", "check", "explain", "plot", "demo"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: scratchnet {command}" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fly"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fly'" in capsys.readouterr().err
