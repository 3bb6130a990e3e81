"""``scratchnet train --backend loops``, ``--resume``, ``evaluate`` and ``inspect`` with NumPy unimportable
(issue 27: the microgpt recipe "trains with NumPy absent"): the command line runs in a child process whose
``import numpy`` fails, and what it trains is checked in this process, with NumPy, against the vectorized
backend's scoring of the same model."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet, run_without

from scratchnet.core.lazy import lazy_module, quiet_floats
from scratchnet.io.model import load_model
from scratchnet.training.next_token import text_loss
from scratchnet.training.text_train import recorded_vocabulary

# The command line, run in the child process whose NumPy is blocked; it fails if anything imported NumPy.
CLI = """
    from scratchnet.cli import main
    code = main(sys.argv[1:])
    assert "numpy" not in sys.modules, "numpy was imported"
    sys.exit(code)
    """
LAYERS = "embedding(16), positions(16), residual(rmsnorm, attention(4)), residual(rmsnorm, dense(32), relu, dense(16))"
RUNNING_LAYERS = "embedding(16), positions(8), residual(rmsnorm, attention(4)), rmsnorm"
NUMBER = r"([0-9.]+)"


def cli_without_numpy(*args: str) -> tuple[int, str, str]:
    result = run_without("numpy", CLI, *args, timeout=300)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def names(data_dir: Path, tmp_path: Path) -> Path:
    """60 names (lines 201-260 of names.txt)."""
    lines = (data_dir / "names" / "names.txt").read_text().splitlines()[200:260]
    path = tmp_path / "names.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def shakespeare(data_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "shakespeare.txt"
    path.write_bytes((data_dir / "tinyshakespeare" / "input.txt").read_bytes()[:3000])
    return path


def held_out_loss_with_numpy(model: Path) -> float:
    """The model's held-out loss, loaded into the vectorized backend in this process (NumPy present)."""
    from scratchnet.data.text import load_recorded_text

    loaded = load_model(model, backend="vectorized")
    vocabulary = recorded_vocabulary(loaded.metadata, model)
    data = load_recorded_text(loaded.metadata["source"], vocabulary, "vectorized")
    return text_loss(loaded.network, data, int(loaded.metadata["text"]["context"]))[0]


def test_documents_train_resume_evaluate_and_inspect_without_numpy(names: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    code, stdout, stderr = cli_without_numpy(
        "train", "--backend", "loops", "--data", str(names), "--layers", LAYERS, "--steps", "6",
        "--batch-size", "4", "--eval-every", "2", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "cross-check passed (NumPy absent: the loops backend alone): finite differences" in stdout
    # 6 steps of 4 of the 54 training names (6 held out): 6 / 14 passes over them (a pass is 14 steps)
    assert re.search(r"step 6 \(epoch 0.4286\)  loss [0-9.]+ .* [0-9]+ tokens/s$", stdout, re.M), stdout
    assert "img/s" not in stdout and "loss every 2 steps " in stdout  # the sparkline of the 3 records
    said = float(re.search(rf"held-out loss {NUMBER} nats/char", stdout).group(1))  # type: ignore[union-attr]
    assert said == pytest.approx(held_out_loss_with_numpy(out), abs=1e-4)

    code, stdout, stderr = cli_without_numpy("evaluate", str(out))  # the loops backend: NumPy is missing
    assert code == 0, stderr
    assert "loops backend" in stdout and f"loss {said:.4f} nats/char" in stdout

    code, stdout, stderr = cli_without_numpy("inspect", str(out))
    assert code == 0, stderr
    letters = "".join(sorted(set(names.read_text()) - {"\n"}))  # 24 letters: these names lack q and x
    vocabulary = f'vocabulary: {len(letters) + 1} tokens, {len(letters)} characters "{letters}" and the boundary token'
    assert f"{vocabulary} (id {len(letters)}: it starts and ends every document)" in stdout
    assert "documents (one a line), context" in stdout
    assert "split: 54 documents for training, 6 held out (seed 3407)" in stdout  # makemore's min(1000, 10%)


def test_a_checkpoint_resumes_without_numpy_to_the_uninterrupted_model(names: Path, tmp_path: Path) -> None:
    """Steps 1-3 in a NumPy-less library run stopped there, 4-6 by ``train --resume`` without NumPy: the
    model is, to the last bit, the one a whole run (with NumPy present) gives."""
    script = f"""
        from scratchnet.training.config import TrainConfig
        from scratchnet.training.loop import Callback
        from scratchnet.training.text_train import TextSettings, train_text
        from scratchnet.training.train import TrainingInterrupted

        class StopAt(Callback):
            def on_step_end(self, loop, loss):
                if loop.global_step == 3:
                    loop.request_stop()

        config = TrainConfig(data={str(names)!r}, layers={LAYERS!r}, batch_size=4, lr=0.01, backend="loops")
        try:
            train_text(config, TextSettings(steps=6, eval_every=2), out={str(tmp_path / "cut.json")!r},
                       check=False, log=lambda line: None, callbacks=(StopAt(),))
        except TrainingInterrupted as stop:
            print("stopped", stop.checkpoint)
        assert "numpy" not in sys.modules
        """
    stopped = run_without("numpy", script)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    code, stdout, stderr = cli_without_numpy("train", "--resume", str(tmp_path / "cut.checkpoint.json"))
    assert code == 0, stderr
    assert "at step 3 of 6" in stdout

    from scratchnet.training.config import TrainConfig
    from scratchnet.training.text_train import TextSettings, train_text

    config = TrainConfig(data=str(names), layers=LAYERS, batch_size=4, lr=0.01, backend="loops")
    whole = train_text(config, TextSettings(steps=6, eval_every=2), check=False, log=lambda line: None)
    resumed = load_model(tmp_path / "cut.json", backend="loops").network.params()
    for name, value in whole.network.params().items():
        assert resumed[name] == value, name


def test_running_text_trains_evaluates_and_inspects_without_numpy(shakespeare: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    code, stdout, stderr = cli_without_numpy(
        "train", "--backend", "loops", "--data", str(shakespeare), "--layers", RUNNING_LAYERS,
        "--context", "8", "--batch-size", "2", "--steps", "3", "--no-check", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    said = float(re.search(rf"held-out loss {NUMBER} nats/char", stdout).group(1))  # type: ignore[union-attr]
    assert math.isfinite(said) and said == pytest.approx(held_out_loss_with_numpy(out), abs=1e-4)
    code, stdout, stderr = cli_without_numpy("evaluate", str(out), "--backend", "loops")
    assert code == 0 and f"loss {said:.4f} nats/char" in stdout, stderr
    code, stdout, stderr = cli_without_numpy("inspect", str(out))
    assert code == 0, stderr
    characters = "".join(sorted(set(shakespeare.read_text())))
    assert characters.startswith("\n ")
    shown = "\\n" + characters[1:]  # the newline written as its escape, on the vocabulary's one line
    assert f'vocabulary: {len(characters)} tokens, {len(characters)} characters "{shown}"' in stdout
    assert "running text, context 8" in stdout
    assert "split: the first 2,700 characters for training, the last 300 held out" in stdout  # nanoGPT's 90%


def test_inspect_escapes_control_characters_of_a_vocabulary(tmp_path: Path) -> None:
    text = tmp_path / "odd.txt"
    text.write_text("ab\x1b[2Jc\tab\x1b[2Jc\tab\x1b[2Jc\t" * 20)
    out = tmp_path / "o.json"
    trained = run_scratchnet(
        "train", "--backend", "loops", "--data", str(text), "--layout", "running", "--layers", "embedding(4)",
        "--context", "4", "--steps", "1", "--no-check", "--out", str(out),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    shown = run_scratchnet("inspect", str(out))
    assert shown.returncode == 0, shown.stderr
    assert 'vocabulary: 8 tokens, 8 characters "\\t\\x1b2J[abc"' in shown.stdout
    assert "\x1b" not in shown.stdout and "\t" not in shown.stdout


def test_the_vectorized_backend_without_numpy_is_a_one_line_error(names: Path, tmp_path: Path) -> None:
    code, _, stderr = cli_without_numpy("train", "--data", str(names), "--steps", "1", "--out", str(tmp_path / "v"))
    assert code != 0 and stderr.strip().count("\n") == 0, stderr
    assert "the vectorized backend needs NumPy, which is not installed: use --backend loops" in stderr
    assert not list(tmp_path.glob("v*"))


def test_a_lazy_module_is_imported_on_first_use_and_then_is_the_module() -> None:
    namespace: dict[str, object] = {}
    namespace["json"] = lazy_module("json", namespace, "json")
    assert namespace["json"].__class__.__name__ == "LazyModule"
    assert namespace["json"].dumps([1]) == "[1]"  # type: ignore[attr-defined]
    import json

    assert namespace["json"] is json


def test_quiet_floats_silences_numpy_when_it_is_loaded() -> None:
    with np.errstate(all="raise"), quiet_floats():
        assert set(np.geterr().values()) == {"ignore"}
        assert np.isinf(np.float64(1e308) * 10)  # no FloatingPointError: silenced
    script = """
        from scratchnet.core.lazy import quiet_floats
        with quiet_floats():
            print("nothing to silence")
        """
    result = run_without("numpy", script)
    assert result.returncode == 0 and "nothing to silence" in result.stdout, result.stderr


def test_a_small_mlp_trains_on_mnist_resumes_and_evaluates_without_numpy(data_dir: Path, tmp_path: Path) -> None:
    """Steps 1-3 in a NumPy-less library run stopped there, the rest by ``train --resume`` without NumPy:
    the model and its test accuracy are those of a whole run with NumPy present; ``evaluate`` and
    ``inspect`` work on it without NumPy."""
    if not (data_dir / "mnist").is_dir():
        pytest.skip("MNIST is not in the data directory")
    settings: dict[str, Any] = {
        "hidden": (16,), "limit": 64, "validation": 100, "epochs": 2, "batch_size": 32, "backend": "loops", "lr": 0.01,
    }  # fmt: skip
    script = f"""
        from scratchnet.training.config import TrainConfig
        from scratchnet.training.loop import Callback
        from scratchnet.training.train import TrainingInterrupted, train

        class StopAt(Callback):
            def on_step_end(self, loop, loss):
                if loop.global_step == 3:
                    loop.request_stop()

        try:
            train(TrainConfig(**{settings!r}), data_dir={str(data_dir)!r}, out={str(tmp_path / "cut.json")!r},
                  check=False, log=lambda line: None, callbacks=(StopAt(),))
        except TrainingInterrupted as stop:
            print("stopped", stop.checkpoint)
        assert "numpy" not in sys.modules
        """
    stopped = run_without("numpy", script)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    code, stdout, stderr = cli_without_numpy(
        "train", "--resume", str(tmp_path / "cut.checkpoint.json"), "--data-dir", str(data_dir)
    )
    assert code == 0, stderr
    accuracy = re.search(r"test accuracy ([0-9.]+)% \(10000 test images\)", stdout)
    assert accuracy is not None, stdout

    from scratchnet.training.config import TrainConfig
    from scratchnet.training.train import train

    whole = train(TrainConfig(**settings), data_dir=data_dir, check=False, log=lambda line: None)  # with NumPy present
    assert float(accuracy.group(1)) == pytest.approx(100 * whole.test_accuracy, abs=0.005)
    resumed = load_model(tmp_path / "cut.json", backend="loops").network.params()
    for name, value in whole.network.params().items():
        assert resumed[name] == value, name

    code, stdout, stderr = cli_without_numpy("evaluate", str(tmp_path / "cut.json"), "--data-dir", str(data_dir))
    assert code == 0, stderr
    assert f"test accuracy {accuracy.group(1)}% (" in stdout and "confusion matrix" in stdout
    assert "loops backend" in stdout
    code, stdout, stderr = cli_without_numpy("inspect", str(tmp_path / "cut.json"))
    assert code == 0 and "784-16-10" not in stderr and "Dense" in stdout, stderr


def test_augmentations_without_numpy_are_a_one_line_error_before_any_file(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "mnist").is_dir():
        pytest.skip("MNIST is not in the data directory")
    code, _, stderr = cli_without_numpy(
        "train", "--backend", "loops", "--hidden", "8", "--limit", "16", "--augment", "1",
        "--data-dir", str(data_dir), "--out", str(tmp_path / "a.json"),
    )  # fmt: skip
    assert code != 0 and stderr.strip().count("\n") == 0, stderr
    assert "the augmentations need NumPy, which is not installed: train without them" in stderr
    assert not list(tmp_path.iterdir())


def test_what_needs_numpy_says_so_in_one_line_where_numpy_is_missing(tmp_path: Path) -> None:
    """Your own data (a CSV file) is read with NumPy: where it is not installed (ModuleNotFoundError, as a
    real absence raises), the command says so in one line, and writes nothing."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n" + "".join(f"{k},{k % 3},{k % 2}\n" for k in range(20)))
    script = """
        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name == "numpy" or name.startswith("numpy."):
                    raise ModuleNotFoundError("No module named 'numpy'", name="numpy")
                return None

        sys.meta_path.insert(0, Missing())
        from scratchnet.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    out = str(tmp_path / "m.json")
    result = run_without("numpy", script, "train", "--backend", "loops", "--data", str(table), "--out", out)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "scratchnet train: error: this needs NumPy, which is not installed (pip install numpy)" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["t.csv"]


def test_the_microgpt_recipe_trains_without_numpy(names: Path, tmp_path: Path) -> None:
    """Issue 27: ``--recipe microgpt`` "trains with NumPy absent (loops backend)"; its held-out loss is the one
    the vectorized backend gives the saved model."""
    out = tmp_path / "micro.json"
    code, stdout, stderr = cli_without_numpy(
        "train", "--data", str(names), "--recipe", "microgpt", "--steps", "6", "--eval-every", "3", "--out", str(out)
    )
    assert code == 0, stderr
    assert "cross-check passed (NumPy absent: the loops backend alone)" in stdout
    tokens = len(set(names.read_text()) - {"\n"}) + 1  # the letters and the boundary
    parameters = 2 * tokens * 16 + 16 * 16 + 4 * 16 * 16 + 2 * 16 * 64  # embeddings, positions, attention, MLP
    assert f"{parameters:,} parameters, loops; Adam lr 0.01; batch 1 x context 16, 6 steps" in stdout
    said = float(re.search(rf"held-out loss {NUMBER} nats/char", stdout).group(1))  # type: ignore[union-attr]
    assert said == pytest.approx(held_out_loss_with_numpy(out), abs=1e-4)
