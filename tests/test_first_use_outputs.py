"""Issue 15, items 1-4, 11 and 12: a run's output and checkpoint are never lost or shared.

A closed stdout does not stop training; a checkpoint path holding a model is refused; two runs on
one output are refused by a lock (a stale lock is taken over); an output that cannot be written is
found before training, and a failed final save names the checkpoint that holds the trained model;
default names differ between different networks, and replacing a model says so; every interrupt
names the checkpoint on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from subprocesses import ROOT
from test_train import SMALL, quiet, same_params, synthetic

import scratchnet
import scratchnet.training.train as train_module
from scratchnet.builders import build_network
from scratchnet.cli import build_parser, main
from scratchnet.cli.train import config_from_args, output_path
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError, DatasetError, TrainingError
from scratchnet.io.lock import lock_path_for
from scratchnet.io.model import ModelWriteError, load_model
from scratchnet.training.train import TrainConfig, TrainingInterrupted, checkpoint_path_for, resume, train

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pipes, signals and locks as on POSIX")


def config(**changes: Any) -> TrainConfig:
    return TrainConfig(**{**SMALL, **changes})


def saved_model(path: Path, seed: int = 0) -> bytes:
    """A small model at ``path`` (``NAME.json``); the bytes of its document."""
    scratchnet.save(build_network(mlp([784, 4, 4]), backend="vectorized", seed=seed), path)
    return path.read_bytes()


# ---- item 1: a reader that quits early ----


def test_a_closed_stdout_does_not_stop_training_and_the_status_says_so(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    argv = ["train", "--data-dir", str(data_dir), "--recipe", "small", "--limit", "1000", "--epochs", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scratchnet", *argv, "--no-check", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head -0`: the reader is gone before the first line
    err = process.stderr.read()
    status = process.wait(timeout=120)
    assert status == 141, err  # 128 + SIGPIPE: the output was cut short, the work was not
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == "scratchnet train: standard output was closed; training goes on, and its result is reported here"
    assert lines[-1].startswith(f"scratchnet train: model saved to {out}; test accuracy ")
    model = load_model(out)
    assert len(model.metadata["training"]["history"]) == 2
    assert not checkpoint_path_for(out).exists()


def test_inspect_into_a_closed_pipe_exits_141_without_a_traceback(tmp_path: Path) -> None:
    saved_model(tmp_path / "m.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "scratchnet", "inspect", str(tmp_path / "m.json")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141 and err == ""


# ---- item 2: --checkpoint over an existing model ----


def test_a_checkpoint_path_holding_a_model_is_refused_and_the_model_kept(tmp_path: Path) -> None:
    kept = saved_model(tmp_path / "best.json")
    with pytest.raises(ConfigError, match="holds a model, not a training checkpoint"):
        train(config(), dataset=synthetic(), out=tmp_path / "new.json", checkpoint=tmp_path / "best.json", log=quiet)
    assert (tmp_path / "best.json").read_bytes() == kept and (tmp_path / "best.npz").exists()
    with pytest.raises(ConfigError, match="the output and the checkpoint are the same file"):
        train(config(), dataset=synthetic(), out=tmp_path / "best.json", checkpoint=tmp_path / "best", log=quiet)
    assert (tmp_path / "best.json").read_bytes() == kept
    (tmp_path / "notes.json").write_text('{"mine": true}')
    with pytest.raises(ConfigError, match="not a scratchnet model"):
        train(config(), dataset=synthetic(), out=tmp_path / "new.json", checkpoint=tmp_path / "notes.json", log=quiet)
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'


def test_the_command_line_refuses_the_checkpoint_before_loading_any_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = saved_model(tmp_path / "best.json")
    empty = tmp_path / "no-data"
    empty.mkdir()  # no dataset in it: had the run started, it would fail on the data instead
    argv = ["train", "--data-dir", str(empty), "--out", str(tmp_path / "new.json"), "--checkpoint"]
    assert main([*argv, str(tmp_path / "best.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a model, not a training checkpoint" in err[0] and "--checkpoint" in err[0]
    assert (tmp_path / "best.json").read_bytes() == kept


def test_a_fresh_run_over_an_unfinished_checkpoint_says_how_to_continue_it(tmp_path: Path) -> None:
    def stop(epoch: int, step: int, network: Any) -> None:
        if (epoch, step) == (1, 0):
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        train(config(), dataset=synthetic(), out=tmp_path / "m.json", log=quiet, check=False, hook=stop)
    lines: list[str] = []
    train(config(), dataset=synthetic(), out=tmp_path / "m.json", log=lines.append, check=False)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    assert lines[0] == (
        f"note: {checkpoint} held the checkpoint of an unfinished run (at epoch 2 of 2, step 1); this run starts "
        f"afresh and replaces it (to continue that run instead: scratchnet train --resume {checkpoint})"
    )


# ---- item 3: two runs on one output ----


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    refusals: list[str] = []

    def start_another(epoch: int, step: int, network: Any) -> None:
        if (epoch, step) == (0, 0):
            assert lock_path_for(out).exists()
            with pytest.raises(ModelWriteError) as caught:
                train(config(), dataset=synthetic(), out=out, log=quiet, check=False)
            refusals.append(str(caught.value))
            with pytest.raises(ModelWriteError):  # another output, the same checkpoint: refused too
                train(config(), dataset=synthetic(), out=tmp_path / "b", checkpoint=checkpoint_path_for(out), log=quiet)

    first = train(config(), dataset=synthetic(), out=out, log=quiet, check=False, hook=start_another)
    assert len(refusals) == 1
    assert refusals[0].startswith(f"{out} is being written by another run (pid {os.getpid()} since ")
    assert refusals[0].endswith("); wait for it to finish or choose another output")
    assert same_params(first.network, load_model(out).network)  # the first run was not disturbed
    assert not lock_path_for(out).exists() and not lock_path_for(checkpoint_path_for(out)).exists()
    train(config(), dataset=synthetic(), out=out, log=quiet, check=False)  # released: a new run may start


HOLD_LOCK = """
import sys, time
from scratchnet.io.lock import model_lock
with model_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_stale_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(ModelWriteError, match=f"pid {holder.pid} "):
        train(config(), dataset=synthetic(), out=out, log=quiet, check=False)
    holder.send_signal(signal.SIGKILL)  # no clean-up runs: the lock file stays, unlocked
    holder.wait()
    assert lock_path_for(out).exists()
    train(config(), dataset=synthetic(), out=out, log=quiet, check=False)
    assert out.exists() and not lock_path_for(out).exists()


# ---- item 4: an output that cannot be written ----


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    lines: list[str] = []
    with pytest.raises(ModelWriteError, match=r"cannot write .*a-file/m\.json: .*a-file is a file, not a folder$"):
        train(config(), data_dir=tmp_path / "no-data", out=tmp_path / "a-file" / "m.json", log=lines.append)
    assert lines == []  # refused before the data (which does not exist) was looked for


def test_a_run_that_fails_before_writing_leaves_no_folder_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scratchnet.data.datasets as datasets

    def offline(*args: Any, **kwargs: Any) -> Path:
        raise DatasetError("no network")

    monkeypatch.setattr(datasets, "download_file", offline)
    with pytest.raises(DatasetError):
        train(config(dataset="mnist"), data_dir=tmp_path / "no-data", out=tmp_path / "new" / "m.json", log=quiet)
    assert not (tmp_path / "new").exists()  # made to prove it writable, removed while empty


def test_a_failed_final_save_names_the_checkpoint_that_finishes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m.json"
    real_save = train_module.save_model

    def disk_full_for_the_model(network: Any, path: Path, metadata: Any, optimizer: Any = None) -> None:
        if path == out:
            raise TrainingError(f"cannot save {out}: No space left on device")
        real_save(network, path, metadata, optimizer)

    monkeypatch.setattr(train_module, "save_model", disk_full_for_the_model)
    trained: list[Any] = []
    with pytest.raises(TrainingError) as caught:
        train(config(), dataset=synthetic(), out=out, log=quiet, check=False, hook=lambda e, s, n: trained.append(n))
    checkpoint = checkpoint_path_for(out)
    assert str(caught.value) == (
        f"cannot save {out}: No space left on device; the trained model is in the checkpoint {checkpoint}; "
        f"save it elsewhere with: scratchnet train --resume {checkpoint} --out OTHER.json"
    )
    monkeypatch.undo()
    lines: list[str] = []
    finished = resume(checkpoint, dataset=synthetic(), out=tmp_path / "other.json", log=lines.append)
    assert lines[0] == f"{checkpoint} holds a finished run (2 of 2 epochs): evaluating and saving it"
    assert same_params(trained[-1], load_model(tmp_path / "other.json").network)
    assert finished.test_accuracy > 0.9 and not checkpoint.exists()


# ---- item 11: default names, and saying what was replaced ----


def default_name(*argv: str) -> Path:
    args = build_parser(["train"]).parse_args(["train", *argv])
    return output_path(args, config_from_args(args))


def test_different_networks_get_different_default_names() -> None:
    names = {
        default_name(),
        default_name("--recipe", "small"),
        default_name("--backend", "loops", "--limit", "2000"),
        default_name("--recipe", "classic"),
        default_name("--dataset", "fashion-mnist"),
    }
    assert names == {
        Path("models/mnist.json"),
        Path("models/mnist-small.json"),
        Path("models/mnist-small-loops.json"),
        Path("models/mnist-classic.json"),
        Path("models/fashion-mnist.json"),
    }


def test_a_run_that_replaces_a_model_says_what_it_replaced(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    first = train(config(), dataset=synthetic(), out=out, log=quiet, check=False)
    created = load_model(out).metadata["created"]
    lines: list[str] = []
    train(config(seed=4), dataset=synthetic(), out=out, log=lines.append, check=False)
    assert lines[-1] == (
        f"model saved to {out}; it replaced the previous model "
        f"(test accuracy {100 * first.test_accuracy:.2f}%, synthetic, saved {created})"
    )


def test_an_out_that_is_a_folder_gets_the_default_name_in_it(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    assert default_name("--out", str(tmp_path / "models")) == tmp_path / "models" / "mnist.json"
    assert default_name("--out", f"{tmp_path / 'new'}/", "--recipe", "small") == tmp_path / "new" / "mnist-small.json"
    with pytest.raises(ConfigError, match="is a directory"):
        train(config(), dataset=synthetic(), out=tmp_path / "models", log=quiet)


# ---- item 12: interrupts ----


def test_a_second_ctrl_c_names_the_checkpoint_on_disk(tmp_path: Path) -> None:
    def twice(epoch: int, step: int, network: Any) -> None:
        if (epoch, step) == (1, 2):
            signal.raise_signal(signal.SIGINT)  # noted; the run would stop after this step...
            signal.raise_signal(signal.SIGINT)  # ...but the second one aborts at once

    with pytest.raises(TrainingInterrupted) as caught:
        train(config(), dataset=synthetic(), out=tmp_path / "m.json", log=quiet, check=False, hook=twice)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    assert str(caught.value) == (
        f"interrupted; the checkpoint {checkpoint} holds the run after epoch 1 of 2; "
        f"continue with: scratchnet train --resume {checkpoint}"
    )
    assert caught.value.checkpoint == checkpoint
    whole = train(config(), dataset=synthetic(), out=tmp_path / "whole.json", log=quiet, check=False)
    assert same_params(whole.network, resume(checkpoint, dataset=synthetic(), log=quiet).network)


def test_ctrl_c_during_the_final_save_names_the_finished_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    real_save = train_module.save_model

    def interrupted_model_save(network: Any, path: Path, metadata: Any, optimizer: Any = None) -> None:
        if path == out:
            raise KeyboardInterrupt
        real_save(network, path, metadata, optimizer)

    monkeypatch.setattr(train_module, "save_model", interrupted_model_save)
    with pytest.raises(TrainingInterrupted, match=r"holds the run finished \(2 of 2 epochs\); continue with"):
        train(config(), dataset=synthetic(), out=out, log=quiet, check=False)
    assert not out.exists() and checkpoint_path_for(out).exists()


def test_the_command_line_prints_the_interrupt_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import scratchnet.cli.train as cli_train

    def abort(*args: Any, **kwargs: Any) -> Any:
        raise train_module.abandoned(None)

    monkeypatch.setattr(cli_train, "train", abort)
    assert main(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 130
    assert capsys.readouterr().err == "scratchnet train: interrupted; no checkpoint file was asked for\n"
