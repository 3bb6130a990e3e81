"""Issue 23, item 3: the data paths a model file records (``metadata.source.path``, ``.test``) are hints,
read only while they hold what the model records of them (size and SHA-256; for a folder, a manifest);
anything else is one line naming the path and asking for --data, without reading or quoting the file."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet

from scratchnet.core.errors import DatasetError
from scratchnet.data.recorded import MAX_FOLDER_ENTRIES, check_recorded, excerpt, fingerprint, recorded_dataset
from scratchnet.io.manifest import dump_document
from scratchnet.training.train import TrainConfig, train

SECRET = "root:x:0:0:root:/root:/bin/bash-SECRET-LINE"


def quiet(line: str) -> None:
    pass


def blobs_csv(path: Path, n: int = 120) -> Path:
    rng = np.random.default_rng(3)
    lines = ["a,b,kind"]
    for k in range(n):
        c = k % 3
        x = rng.normal(4.0 * c, 0.5, 2)
        lines.append(f"{x[0]:.4f},{x[1]:.4f},{'pqr'[c]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def trained(tmp_path: Path, **extra: Any) -> Path:
    config = TrainConfig(
        data=str(blobs_csv(tmp_path / "blobs.csv")),
        label_column="kind",
        hidden=(8,),
        epochs=1,
        batch_size=16,
        validation=0,
        **extra,
    )
    out = tmp_path / "models" / "blobs.json"
    train(config, out=out, log=quiet, check=False)
    return out


def reseal(model: Path, mutate: Callable[[dict[str, Any]], Any]) -> None:
    """Edit a model's metadata.source and write it back with a valid checksum, as a hostile author would."""
    document = json.loads(model.read_text())
    mutate(document["metadata"]["source"])
    model.write_bytes(dump_document(document))


def one_line_error(result: Any) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return str(result.stderr)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.mktemp("recorded"))


def test_a_model_records_each_data_files_size_and_sha256(model: Path) -> None:
    source = json.loads(model.read_text())["metadata"]["source"]
    data = Path(source["path"])
    assert source["fingerprint"] == {
        "size": data.stat().st_size,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
    }
    assert source["test_fingerprint"] is None  # a held-out fraction: no second file


def test_the_recorded_file_is_read_while_it_is_unchanged_and_refused_after(tmp_path: Path) -> None:
    model = trained(tmp_path)
    first = run_scratchnet("evaluate", str(model))
    assert first.returncode == 0 and "test accuracy" in first.stdout, first.stderr
    data = tmp_path / "blobs.csv"
    text = data.read_text()
    data.write_text(text + "0.1,0.2,p\n")  # one row more
    error = one_line_error(run_scratchnet("evaluate", str(model)))
    assert f"the model names {str(data)!r} as its training data, which has changed since" in error
    assert "give the test data with --data" in error
    same_size = text[:-2] + ("8" if text[-2] != "8" else "7") + "\n"  # same size, another hash
    data.write_text(same_size)
    assert "has changed since" in one_line_error(run_scratchnet("evaluate", str(model)))
    data.write_text(text)  # as it was: read again
    assert run_scratchnet("evaluate", str(model)).returncode == 0


@pytest.mark.parametrize("fingerprinted", [False, True])
def test_a_model_naming_a_secret_file_never_reads_or_quotes_it(
    tmp_path: Path, model: Path, fingerprinted: bool
) -> None:
    secret = tmp_path / "secrets.csv"
    secret.write_text(f"{SECRET}\n{SECRET}\n")
    hostile = tmp_path / "hostile.json"
    hostile.write_bytes(model.read_bytes())
    (tmp_path / "hostile.npz").write_bytes(model.with_suffix(".npz").read_bytes())

    def mutate(source: dict[str, Any]) -> None:
        source["test"] = str(secret)
        source["test_fingerprint"] = (
            {"size": secret.stat().st_size, "sha256": "0" * 64} if fingerprinted else None  # a guessed size
        )

    reseal(hostile, mutate)
    error = one_line_error(run_scratchnet("evaluate", str(hostile)))
    assert f"the model names {str(secret)!r} as its test data" in error and "--data" in error
    assert "SECRET" not in error and "root:x" not in error
    if not fingerprinted:
        assert "records no size and SHA-256" in error


def test_a_recorded_root_folder_is_not_walked(tmp_path: Path, model: Path) -> None:
    hostile = tmp_path / "root.json"
    hostile.write_bytes(model.read_bytes())
    (tmp_path / "root.npz").write_bytes(model.with_suffix(".npz").read_bytes())
    forged = {"pictures": 10**9, "entries": 10**12, "size": 1, "sha256": "0" * 64}
    reseal(hostile, lambda source: source.update(test="/", test_fingerprint=forged))
    error = one_line_error(run_scratchnet("evaluate", str(hostile), timeout=60))
    assert f"more than {MAX_FOLDER_ENTRIES:,} names" in error
    # a small forged count: the walk stops after that many names (here: the folder's first few)
    with pytest.raises(DatasetError, match="has changed since"):
        check_recorded("/", {**forged, "pictures": 2, "entries": 5}, "its test data")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_or_a_device_at_a_recorded_path_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(DatasetError, match="which is not a regular file; give the test data with --data"):
            check_recorded(path, {"size": 0, "sha256": hashlib.sha256(b"").hexdigest()}, "its test data")


def test_an_old_model_without_fingerprints_evaluates_with_data_only(tmp_path: Path) -> None:
    model = trained(tmp_path)
    reseal(model, lambda source: (source.pop("fingerprint"), source.pop("test_fingerprint")))
    error = one_line_error(run_scratchnet("evaluate", str(model)))
    assert f"the model names {str(tmp_path / 'blobs.csv')!r} as its training data, but records no size" in error
    given = run_scratchnet("evaluate", str(model), "--data", str(tmp_path / "blobs.csv"))
    assert given.returncode == 0 and "test accuracy" in given.stdout, given.stderr


def test_a_recorded_test_file_and_folder_follow_the_same_rule(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for part in ("train", "test"):
        for name, shade in (("dark", 40), ("light", 200)):
            (tmp_path / part / name).mkdir(parents=True)
            for k in range(6):
                pixels = np.clip(rng.normal(shade, 10, (6, 6)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / part / name / f"{k}.png")
    config = TrainConfig(
        data=str(tmp_path / "train"), test=str(tmp_path / "test"), hidden=(4,), epochs=1, batch_size=4, validation=0
    )
    model = tmp_path / "shades.json"
    train(config, out=model, log=quiet, check=False)
    source = json.loads(model.read_text())["metadata"]["source"]
    assert source["test_fingerprint"] == fingerprint(tmp_path / "test")
    assert source["test_fingerprint"]["pictures"] == 12 and source["fingerprint"]["pictures"] == 12
    assert run_scratchnet("evaluate", str(model)).returncode == 0
    (tmp_path / "test" / "dark" / "extra.txt").write_text("a new name in the folder")
    error = one_line_error(run_scratchnet("evaluate", str(model)))
    assert f"{str(tmp_path / 'test')!r} as its test data, which has changed since" in error
    (tmp_path / "test" / "dark" / "extra.txt").unlink()
    assert check_recorded(str(tmp_path / "test"), source["test_fingerprint"], "t") == str(tmp_path / "test")
    Image.fromarray(np.full((6, 6), 41, np.uint8)).save(tmp_path / "test" / "dark" / "0.png")  # one picture redrawn
    with pytest.raises(DatasetError, match="has changed since"):
        check_recorded(str(tmp_path / "test"), source["test_fingerprint"], "t")


def test_a_recorded_mnist_folder_is_read_by_its_fixed_names_and_published_checksums(tmp_path: Path) -> None:
    shared = Path(os.environ.get("SCRATCHNET_DATA_DIR", "/work/shared/data"))
    if not (shared / "mnist").is_dir():
        pytest.skip("needs MNIST in SCRATCHNET_DATA_DIR")
    data = recorded_dataset("mnist", shared)
    assert data.test_images.shape == (10000, 28, 28)
    # a file of the right name that is not the published one is refused unparsed; nothing is downloaded
    fake = tmp_path / "mnist"
    fake.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (fake / name).write_text(f"{SECRET}\n")
    with pytest.raises(DatasetError) as refused:
        recorded_dataset("mnist", tmp_path)
    message = str(refused.value)
    assert "checksum mismatch" in message and "--data-dir" in message and "\n" not in message
    assert "SECRET" not in message and "726f6f74" not in message  # not even the first bytes, in hex
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="downloading is off"):
        recorded_dataset("fashion-mnist", empty)
    assert list(empty.iterdir()) == []


def test_errors_about_rows_show_a_short_escaped_excerpt(tmp_path: Path, model: Path) -> None:
    row = "0.5,0.5," + "\x1b[2J" + "z" * 5000
    other = tmp_path / "other.csv"
    other.write_text(f"a,b,kind\n{row}\n")
    error = one_line_error(run_scratchnet("evaluate", str(model), "--data", str(other)))
    assert "the label '\\x1b[2Jzzz" in error and "\x1b" not in error and "z" * 41 not in error
    assert excerpt("a\nb" * 30) == repr(("a\nb" * 30)[:40]) + "..."
