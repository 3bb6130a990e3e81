"""First use, round two (issue 25), the command line: a model is never lost (item 1), the output layer
(items 4 and 11), what --show checks and says (12, 15), the lock first (13), the same defaults in
Python (16), a file beside a folder (17), the MLP flags beside --layers (24), a table's run (25)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from subprocesses import ROOT, run_python, run_scratchnet

import scratchnet

# ---- item 1: a trained model is never destroyed unasked ----


def write_table(path: Path, rows: int = 60) -> Path:
    """A CSV table of 4 features and 3 classes, well apart: a tiny run learns it."""
    rng = np.random.default_rng(1)
    labels = np.arange(rows) % 3
    points = labels[:, None] * 3.0 + rng.normal(0.0, 0.5, (rows, 4))
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.3f}" for v in p) + f",{'xyz'[k]}" for p, k in zip(points, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


TINY = ("--hidden", "8", "--epochs", "1", "--batch-size", "16", "--no-check")


def test_a_run_without_out_over_a_model_takes_the_next_free_name_and_says_so_first(tmp_path: Path) -> None:
    write_table(tmp_path / "train.csv")
    first = run_scratchnet("train", "--data", "train.csv", *TINY, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    model = tmp_path / "models" / "train.json"
    kept = model.read_bytes()
    accuracy = json.loads(kept)["metadata"]["training"]["final_metrics"]["test_accuracy"]
    for number in (2, 3):
        again = run_scratchnet("train", "--data", "train.csv", *TINY, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[0].startswith(
            f"note: models/train.json holds a model (test accuracy {100 * accuracy:.2f}%, train, saved "
        )
        assert again.stdout.splitlines()[0].endswith(
            f"which is kept; this run saves to models/train-{number}.json "
            "(--out models/train.json --overwrite replaces it)"
        )
        assert f"model saved to models/train-{number}.json" in again.stdout
        assert model.read_bytes() == kept
    assert scratchnet.load_model(tmp_path / "models" / "train-3.json").metadata["dataset"] == "train"


def test_an_explicit_out_over_a_model_needs_overwrite(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    out = tmp_path / "mine.json"
    assert run_scratchnet("train", "--data", str(table), *TINY, "--out", str(out)).returncode == 0
    kept = out.read_bytes()
    accuracy = json.loads(kept)["metadata"]["training"]["final_metrics"]["test_accuracy"]
    refused = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(out))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"scratchnet train: error: {out} exists; give --overwrite to replace it, or another --out (it holds a model: "
        f"test accuracy {100 * accuracy:.2f}%, train, saved {json.loads(kept)['metadata']['created']})"
    ]
    assert out.read_bytes() == kept
    done = run_scratchnet("train", "--data", str(table), *TINY, "--seed", "3", "--out", str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert "it replaced the previous model" in done.stdout and out.read_bytes() != kept


def interrupted_run(table: Path, out: Path) -> Path:
    """Stop a 2-epoch run on ``table`` by Ctrl-C at its first step: its unfinished checkpoint."""
    stop = (
        "import signal\n"
        "from scratchnet.training.train import TrainConfig, train\n"
        "def hook(epoch, step, network):\n"
        "    if step == 0: signal.raise_signal(signal.SIGINT)\n"
        f"config = TrainConfig(data={str(table)!r}, hidden=(8,), epochs=2, batch_size=16, validation=0)\n"
        f"try: train(config, out={str(out)!r}, log=lambda line: None, check=False, hook=hook)\n"
        "except Exception as error: print(type(error).__name__)\n"
    )
    assert "TrainingInterrupted" in run_python("-c", stop).stdout
    checkpoint = out.with_name(out.stem + ".checkpoint.json")
    assert checkpoint.exists() and not out.exists()
    return checkpoint


def test_resuming_into_its_own_model_needs_no_flag(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    out = tmp_path / "m.json"
    assert run_scratchnet("train", "--data", str(table), *TINY, "--out", str(out)).returncode == 0
    checkpoint = interrupted_run(table, tmp_path / "run.json")
    elsewhere = run_scratchnet("train", "--resume", str(checkpoint), "--out", str(out))
    assert elsewhere.returncode == 1 and "give --overwrite" in elsewhere.stderr
    resumed = run_scratchnet("train", "--resume", str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr
    assert f"model saved to {tmp_path / 'run.json'}" in resumed.stdout


def test_import_export_and_predict_never_write_over_a_file_unasked(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    model = tmp_path / "m.json"
    assert run_scratchnet("train", "--data", str(table), *TINY, "--out", str(model)).returncode == 0
    exported = run_scratchnet("export", str(model), "--to", "safetensors")
    assert exported.returncode == 0, exported.stderr
    tensors = tmp_path / "m.safetensors"
    written = tensors.read_bytes()
    again = run_scratchnet("export", str(model), "--to", "safetensors")
    assert again.returncode == 1 and "give --overwrite" in again.stderr and tensors.read_bytes() == written
    assert run_scratchnet("export", str(model), "--to", "safetensors", "--overwrite").returncode == 0
    kept = model.read_bytes()
    imported = run_scratchnet("import", str(tensors), "--out", str(model))
    assert imported.returncode == 1 and imported.stderr.splitlines()[0].startswith(
        f"scratchnet import: error: {model} exists; give --overwrite to replace it, or another --out (it holds a "
        "model: test accuracy "
    )
    assert "give --overwrite" in imported.stderr and model.read_bytes() == kept
    default = run_scratchnet("import", str(tensors))  # the default name, m.json: the model it came from
    assert default.returncode == 1 and "or --overwrite to replace it" in default.stderr and model.read_bytes() == kept
    assert run_scratchnet("import", str(tensors), "--out", str(tmp_path / "back.json")).returncode == 0
    submission = tmp_path / "predictions.csv"
    submission.write_text("mine\n")
    predicted = run_scratchnet("predict", str(model), "--csv", str(table), "--out", str(submission))
    assert predicted.returncode == 1 and submission.read_text() == "mine\n"
    assert predicted.stderr.splitlines() == [
        f"scratchnet predict: error: {submission} exists; give --overwrite to replace it, or another --out "
        "(it holds a file)"
    ]
    printed = run_scratchnet("predict", str(model), "--csv", str(table), "--out", "-")
    assert printed.returncode == 0 and printed.stdout.startswith("row,label\n")
    done = run_scratchnet("predict", str(model), "--csv", str(table), "--out", str(submission), "--overwrite")
    assert done.returncode == 0 and submission.read_text().startswith("row,label\n")


def test_every_writing_command_documents_overwrite_in_its_help() -> None:
    for command in ("train", "import", "export", "predict"):
        assert "--overwrite" in run_scratchnet(command, "--help").stdout, command
    doc = (ROOT / "docs" / "training.md").read_text()
    assert "models/mnist-2.json" in doc and "--overwrite" in doc


# ---- items 13 and 17: the lock first; a file named beside a folder ----


def test_a_second_run_on_a_live_runs_out_is_refused_before_it_says_anything(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    out = tmp_path / "m.json"
    interrupted_run(table, out)  # an unfinished run's checkpoint: a fresh run would say it replaces it
    hold = "import sys, time\nfrom scratchnet.io.lock import model_lock\nwith model_lock(sys.argv[1]):\n"
    hold += "    print('locked', flush=True)\n    time.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        second = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(out))
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 1 and second.stdout == "", second.stdout
    assert len(second.stderr.splitlines()) == 1 and "is being written by another run" in second.stderr
    alone = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(out))
    assert alone.stdout.startswith(f"note: {out.with_name('m.checkpoint.json')} held the checkpoint"), alone.stdout


def test_out_naming_a_file_beside_a_folder_of_that_name_writes_the_file(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    (tmp_path / "pics").mkdir()
    done = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(tmp_path / "pics.json"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pics.json").is_file() and (tmp_path / "pics.npz").is_file()
    into = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(tmp_path / "pics"))
    assert into.returncode == 0 and (tmp_path / "pics" / "train.json").is_file(), into.stderr


# ---- items 16 and 24: the same defaults in Python; MLP flags beside --layers ----


def test_the_python_api_defaults_as_the_command_line_for_own_data(tmp_path: Path) -> None:
    table = write_table(tmp_path / "iris.csv")
    code = (
        "from scratchnet.training.train import TrainConfig, train\n"
        f"result = train(TrainConfig(data={str(table)!r}, hidden=(8,), epochs=1), log=lambda line: None, check=False)\n"
        "print(result.config.validation, result.metadata['training']['validation_images'])\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]
    from scratchnet.training.train import TrainConfig

    assert TrainConfig().validation == 10000 and TrainConfig(data="x.csv", validation=5).validation == 5


def test_mlp_flags_beside_layers_are_refused_in_good_grammar_with_the_layers_to_write() -> None:
    done = run_scratchnet("train", "--layers", "dense(10)", "--hidden", "10", "--show")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "scratchnet train: error: --hidden describes an MLP's hidden layers, and this network is given by its "
        'layers (--layers, or the recipe\'s): write them there instead, e.g. --layers "dense(10), dense(10), relu"'
    ]
    both = run_scratchnet("train", "--recipe", "cnn-small", "--dropout", "0.25", "--activation", "tanh", "--show")
    assert "--activation and --dropout describe an MLP's hidden layers" in both.stderr
    assert 'e.g. --layers "conv(8, 3), relu, maxpool(2), flatten, tanh, dropout(0.25)"' in both.stderr


# ---- items 4 and 11: the output layer, given or added ----

MNIST_TINY = ("--limit", "200", "--validation", "100", "--epochs", "1", "--no-check")


def test_keras_style_layers_ending_in_the_output_layer_get_nothing_added(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    layers = "conv(4,3),relu,maxpool(2),flatten,dense(10),softmax"
    done = run_scratchnet("train", "--layers", layers, "--data-dir", str(data_dir), *MNIST_TINY, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (
        "network: the layers end in dense(10), one unit per class: that is the output layer (none added)"
        in (done.stdout.splitlines()[:3])
    )
    types = [layer["type"] for layer in scratchnet.load_model(out).architecture["layers"]]
    assert types == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "Softmax"]
    added = run_scratchnet(
        "train",
        "--layers",
        "flatten, dense(16), relu",
        "--data-dir",
        str(data_dir),
        *MNIST_TINY,
        "--out",
        str(tmp_path / "a.json"),
    )
    assert added.returncode == 0, added.stderr
    assert (
        "network: the output layer dense(10) (one unit per class) and a softmax are added after the layers"
        in (added.stdout.splitlines()[:3])
    )
    assert [layer["type"] for layer in scratchnet.load_model(tmp_path / "a.json").architecture["layers"]][-2:] == [
        "Dense",
        "Softmax",
    ]


def test_a_softmax_anywhere_but_last_is_refused_naming_the_item() -> None:
    done = run_scratchnet("train", "--layers", "conv(4,3),softmax,flatten", "--show")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "scratchnet train: error: --layers item 2 'softmax': a Softmax comes last only, after the output layer "
        "(dense(10), one unit per class), whose scores it turns into probabilities"
    ]
    late = run_scratchnet("train", "--layers", "flatten, dense(64), softmax", "--show")
    assert late.returncode == 1 and "--layers item 3 'softmax': a Softmax comes after the output layer" in late.stderr


def test_a_missing_flatten_is_named_with_the_added_output_layer_and_the_fix() -> None:
    done = run_scratchnet("train", "--layers", "conv(8,3),relu,maxpool(2)", "--show")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "scratchnet train: error: the layers (--layers) end in outputs of shape 8x13x13 per sample, and the output "
        "layer added after them, dense(10) (one unit per class), needs one row of features: end them with a flatten "
        "('conv(8,3),relu,maxpool(2), flatten')"
    ]
    assert "item 4" not in done.stderr
    from scratchnet.core.errors import ConfigError
    from scratchnet.training.task import Classification

    with pytest.raises(ConfigError, match="output is 13x10 per sample.*put a flatten before the output layer"):
        Classification().check_output((13, 10), 10)


# ---- items 12, 15 and 25: --show checks; a table's run ----


def test_show_checks_the_layers_as_a_run_would() -> None:
    done = run_scratchnet("train", "--show", "--layers", "conv(8,3),relu,flaten")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("scratchnet train: error: item 3 'flaten': unknown layer 'flaten'")
    fine = run_scratchnet("train", "--show", "--layers", "conv(8,3),relu,flatten", "--data-dir", "/nowhere")
    assert fine.returncode == 0, fine.stderr


def test_show_on_a_table_says_nothing_of_shifts_nor_internal_names(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    done = run_scratchnet("train", "--show", "--data", str(table))
    assert done.returncode == 0, done.stderr
    assert "random shifts" not in done.stdout and "2 pixels" not in done.stdout
    assert "validation_split" not in done.stdout and "the recipe's validation" not in done.stdout
    assert done.stdout.splitlines()[0] == (
        "recipe default for train (your own data: the recipe's shifts, mirroring and validation split for "
        "MNIST's images are not used)"
    )
    assert re.search(r"^  --augment +0$", done.stdout, flags=re.M)
    typo = run_scratchnet("train", "--show", "--data", str(table), "--layers", "dense(8), relu, drpout(0.1)")
    assert typo.returncode == 1 and typo.stderr.startswith("scratchnet train: error: item 3 'drpout(0.1)': unknown")
    classic = run_scratchnet("train", "--show", "--recipe", "classic").stdout
    assert re.search(r"^  --validation +1000 \(the first training samples, not the last\)$", classic, flags=re.M)


def test_a_table_run_reports_rows_per_second_no_empty_val_and_a_note_on_the_default_width(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv")
    done = run_scratchnet("train", "--data", str(table), "--epochs", "1", "--no-check", "--out", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == (
        "note: train is a table of 4 features, and this network's hidden layers are 800,800 wide (the default "
        "recipe's, sized for 784 pixels); a network sized to the table, such as --hidden 32 or 64,32, trains as "
        "well in a fraction of the time"
    )
    epoch = next(line for line in lines if line.startswith("epoch 1/1"))
    assert epoch.endswith(" rows/s") and " val " not in epoch and "img/s" not in epoch
    sized = run_scratchnet("train", "--data", str(table), *TINY, "--out", str(tmp_path / "s"))
    assert sized.returncode == 0 and not any(line.startswith("note:") for line in sized.stdout.splitlines())


# ---- item 5: evaluate --data on the model's own training file ----


def test_evaluate_on_the_moved_training_file_scores_only_its_held_out_rows(tmp_path: Path) -> None:
    table = write_table(tmp_path / "train.csv", rows=100)
    model = tmp_path / "m.json"
    assert run_scratchnet("train", "--data", str(table), *TINY, "--out", str(model)).returncode == 0
    own = run_scratchnet("evaluate", str(model))
    assert own.returncode == 0, own.stderr
    moved = tmp_path / "elsewhere" / "renamed.csv"
    moved.parent.mkdir()
    table.rename(moved)
    gone = run_scratchnet("evaluate", str(model))
    assert gone.returncode == 1 and "give the test data with --data" in gone.stderr
    done = run_scratchnet("evaluate", str(model), "--data", str(moved))
    assert done.returncode == 0, done.stderr
    # the held-out rows: 20% of each class of 100 rows in 3 classes (34, 33, 33) -> 7 + 7 + 7
    assert done.stdout.splitlines()[0] == (
        f"note: {moved} is the file {model} was trained on (its size and SHA-256 match the model's record): only "
        "the 21 rows held out from training (--test-fraction 0.2) are scored, not the ones it learned from"
    )
    accuracy = re.compile(r"^test accuracy .* of (\d+) test rows", flags=re.M)
    assert accuracy.findall(done.stdout) == ["21"] == accuracy.findall(own.stdout)
    scored = [next(line for line in run.stdout.splitlines() if line.startswith("test accuracy")) for run in (done, own)]
    assert scored[0].split("(")[0] == scored[1].split("(")[0]  # the same accuracy as on its recorded test set
    other = tmp_path / "other.csv"
    other.write_text(moved.read_text() + moved.read_text().split("\n", 1)[1])  # another file: 200 rows
    every = run_scratchnet("evaluate", str(model), "--data", str(other))
    assert every.returncode == 0 and accuracy.findall(every.stdout) == ["200"] and "note:" not in every.stdout


# ---- item 6: the data directory is remembered ----


def test_evaluate_predict_and_explain_read_mnist_where_the_model_was_trained_from(
    data_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "mnist.json"
    trained = run_scratchnet(
        "train", "--recipe", "small", *MNIST_TINY, "--data-dir", str(data_dir), "--out", str(model), timeout=300
    )
    assert trained.returncode == 0, trained.stderr
    assert scratchnet.load_model(model).metadata["data_dir"] == str(data_dir.resolve())
    empty = tmp_path / "cache"
    empty.mkdir()
    elsewhere = {"SCRATCHNET_DATA_DIR": "", "XDG_CACHE_HOME": str(empty), "HOME": str(tmp_path)}
    for command in (["evaluate", str(model)], ["predict", str(model), "--index", "0"], ["explain", str(model)]):
        done = run_scratchnet(*command, env=elsewhere)
        assert done.returncode == 0, (command, done.stderr)
    evaluated = run_scratchnet("evaluate", str(model), env=elsewhere)
    assert re.search(r"^test accuracy .* of 10000 test images", evaluated.stdout, flags=re.M)
    assert list(empty.iterdir()) == []  # nothing downloaded, and nothing made in the cache
