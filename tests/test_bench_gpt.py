"""tools/bench_gpt.py: that it runs and prints its tables, and that each reference starts where the run does
(never how fast anything runs)."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from tool_modules import tool

from scratchnet.data.text_batches import training_batch
from scratchnet.training.text_train import train_text


@pytest.fixture(scope="module")
def small_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two files of the benchmark, cut short: 300 names, 20,000 characters of Shakespeare."""
    folder = tmp_path_factory.mktemp("bench_gpt_data")
    (folder / "names").mkdir()
    (folder / "tinyshakespeare").mkdir()
    names = (data_dir / "names" / "names.txt").read_text(encoding="utf-8").splitlines()[:300]
    (folder / "names" / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:20000]
    (folder / "tinyshakespeare" / "input.txt").write_text(text, encoding="utf-8")
    return folder


def test_the_reference_starts_from_the_runs_weights_on_the_runs_documents(small_data: Path) -> None:
    runs = tool("bench_gpt_runs")
    reference = tool("microgpt_reference")
    config, settings = runs.run_config("microgpt", str(small_data / "names" / "names.txt"), 4)
    start = runs.microgpt_start(config, settings)
    data, network, _ = runs.initial_state(config, settings)
    names = set((small_data / "names" / "names.txt").read_text(encoding="utf-8").split())
    assert len(start.documents) == 4 and start.boundary == data.vocabulary.boundary_id
    for step, document in enumerate(start.documents):
        assert data.vocabulary.decode(document) in names  # a whole name, as the run's batch of that step holds it
        inputs, targets = training_batch(data, step, 1, start.config.block_size, config.seed)
        expected = network.loss(network.forward(inputs, training=False), targets)  # scratchnet's own first loss
        params = reference.as_params(start.weights)
        ours = reference.document_loss(params, [start.boundary, *document, start.boundary], start.config).data
        assert ours == pytest.approx(expected, rel=1e-12)
    assert len(set(map(tuple, start.documents))) > 1  # not one document over and over
    assert (start.config.n_layer, start.config.n_head, start.config.n_embd) == (1, 4, 16)
    assert (start.lr, start.betas, start.eps) == (0.01, (0.85, 0.99), 1e-8)


def test_the_bench_runs_and_prints_its_tables(small_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    bench_gpt = tool("bench_gpt")
    code = bench_gpt.main(["--data-dir", str(small_data), "--steps", "2", "--threads", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    # the twin agrees with the recipe's steps in float64 (three steps, clipping and warmup included)
    check = re.search(r"largest difference after the steps (\S+) .* agree to 1e-08", out)
    assert check is not None, out
    assert float(check.group(1)) <= 1e-8
    rows = {m.group(1): m.group(2).split() for m in re.finditer(r"^ +1 (scratchnet|torch) +(.*)$", out, re.M)}
    assert set(rows) == {"scratchnet", "torch"}, out
    losses = [float(rows[name][-2]) for name in ("scratchnet", "torch")]  # val loss, then RSS
    assert all(1.0 < loss < 2 * math.log(65) for loss in losses), out  # finite, near chance after 2 steps
    assert abs(losses[0] - losses[1]) < 0.01, out  # two steps from the same weights on the same batches
    pattern = r"^(scratchnet \(loops\)|microgpt's algorithm) +(.*)$"
    micro = {m.group(1): m.group(2).split() for m in re.finditer(pattern, out, re.M)}
    assert set(micro) == {"scratchnet (loops)", "microgpt's algorithm"}, out
    first = [float(row[-3]) for row in micro.values()]  # first loss, last-100 loss, RSS
    assert first[0] == pytest.approx(first[1], rel=1e-9), out  # the same weights on the same first document


def test_bench_py_runs_it_last_with_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = tool("bench")
    bench_gpt = tool("bench_gpt")  # registered, as `import bench_gpt` in tools/bench.py finds it
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(bench_gpt, "main", fake_main)
    command = ["bench.py", "--configs", "gpt", "--steps", "2", "--rounds", "1", "--threads", "1", "--data-dir", "D"]
    monkeypatch.setattr(sys, "argv", command)
    assert bench.main() == 0
    assert seen == [["--threads", "1", "--data-dir", "D", "--rounds", "1", "--steps", "2"]]


def test_the_microgpt_run_and_the_reference_train_alike_step_by_step(small_data: Path) -> None:
    # the same weights, documents and Adam: scratchnet's loops run and the scalar autograd agree to rounding,
    # which says that the recipe is microgpt's network and optimizer, and that the bench compares like with like
    runs = tool("bench_gpt_runs")
    reference = tool("microgpt_reference")
    config, settings = runs.run_config("microgpt", str(small_data / "names" / "names.txt"), 6)
    start = runs.microgpt_start(config, settings)
    theirs = reference.train(start.weights, start.documents, start.boundary, 6, start.config,
                             lr=start.lr, betas=start.betas, eps=start.eps)  # fmt: skip
    recorder = runs.StepLosses()
    train_text(config, settings, log=lambda _: None, progress=False, check=False, callbacks=(recorder,))
    assert len(recorder.losses) == 6
    np.testing.assert_allclose(recorder.losses, theirs, rtol=1e-9)
    assert theirs[-1] != theirs[0]
