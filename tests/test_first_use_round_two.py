"""First use, round two (issue 25): what a new user tripped over, each done as the user did it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from subprocesses import ROOT, run_scratchnet

import scratchnet
from scratchnet.core.architecture import mlp
from scratchnet.core.notation import parse


def test_docs_list_what_a_run_prints_in_the_order_it_prints_it(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    args = ["train", "--recipe", "small", "--limit", "300", "--epochs", "3", "--data-dir", str(data_dir)]
    done = run_scratchnet(*args, "--out", str(out), "--no-check")
    assert done.returncode == 0, done.stderr
    printed = (done.stdout + done.stderr).splitlines()
    starts = {
        "test accuracy": "test accuracy ",
        "where the model was saved": "model saved to ",
        "a sparkline": "loss per epoch ",
    }
    order = [next(i for i, line in enumerate(printed) if line.startswith(start)) for start in starts.values()]
    assert order == sorted(order), printed
    section = (ROOT / "docs" / "training.md").read_text().split("## What a run prints and saves")[1]
    listed = re.findall(r"^\d+\. (.*)$", section.split("A progress bar")[0], flags=re.M)
    positions = [
        next(i for i, item in enumerate(listed) if item.startswith(what))
        for what in ("the test", "where", "with three")
    ]
    assert positions == sorted(positions), listed
    assert "lists them all" not in (ROOT / "docs" / "training.md").read_text()


def test_model_files_doc_names_the_versions_scratchnet_writes(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "model-files.md").read_text()
    scratchnet.save(scratchnet.build_network(mlp([4, 3, 2]), seed=0), tmp_path / "mlp")
    cnn = parse("input(1x6x6), conv(2, 3), relu, flatten, dense(3)")
    scratchnet.save(scratchnet.build_network(cnn, seed=0), tmp_path / "cnn")
    versions = {name: json.loads((tmp_path / f"{name}.json").read_text())["version"] for name in ("mlp", "cnn")}
    assert versions == {"mlp": 1, "cnn": 2}
    assert "an MLP's file is version 1 and a\nCNN's version 2" in doc


# ---- item 30: a hand-edited model ----


def saved_model(tmp_path: Path) -> Path:
    net = scratchnet.build_network(mlp([4, 3, 2]), seed=0)
    scratchnet.save(net, tmp_path / "m", metadata={"class_names": ["cat", "dog"]})
    return tmp_path / "m.json"


def test_a_hand_edited_model_says_how_to_re_sign_it_and_inspect_does_after_asking(tmp_path: Path) -> None:
    path = saved_model(tmp_path)
    path.write_text(path.read_text().replace('"dog"', '"wolf"'))
    edited = path.read_bytes()
    refused = run_scratchnet("inspect", str(path))
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(f"(if you edited it on purpose: scratchnet inspect {path} --fix-checksum)")
    unasked = run_scratchnet("inspect", str(path), "--fix-checksum")  # no terminal to ask on, no --yes
    assert unasked.returncode == 1 and "give --yes" in unasked.stderr and path.read_bytes() == edited
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: re-signed")
    assert scratchnet.load_model(path).metadata["class_names"] == ["cat", "wolf"]
    again = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert again.stdout.startswith(f"{path}: the checksum was right already")


def test_fix_checksum_rewrites_nothing_when_anything_else_is_wrong(tmp_path: Path) -> None:
    path = saved_model(tmp_path)
    document = json.loads(path.read_text())
    document["metadata"]["class_names"] = ["cat", "wolf"]
    document["unexpected"] = 1  # a rule other than the checksum
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 1 and "unexpected" in done.stderr and path.read_bytes() == before
    path = saved_model(tmp_path / "arrays")
    path.write_text(path.read_text().replace('"dog"', '"wolf"'))
    npz = path.with_suffix(".npz")
    damaged = bytearray(npz.read_bytes())
    damaged[-200] ^= 0xFF  # inside the last array's bytes or the zip directory: either is refused
    npz.write_bytes(bytes(damaged))
    before = path.read_bytes()
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 1 and path.read_bytes() == before, done.stderr
    assert len(done.stderr.splitlines()) == 1


# ---- items 1 and 18: the tour ----

TOUR = (ROOT / "docs" / "tour.md").read_text()


def test_the_tour_never_writes_over_the_model_the_readme_trained() -> None:
    readme_out = "models/mnist.json"
    assert readme_out in (ROOT / "README.md").read_text()
    for line in TOUR.splitlines():
        if line.strip().startswith("scratchnet train"):
            assert "--out models/" in line and readme_out not in line, line


def test_the_tour_stops_at_every_layer_of_a_cnn_and_cites_real_code_and_equations() -> None:
    for file in ("convolution.py", "pooling.py", "normalization.py", "reshape.py"):
        assert f"`scratchnet/loops/{file}`" in TOUR
    import scratchnet.loops.convolution
    import scratchnet.loops.normalization
    import scratchnet.loops.pooling
    import scratchnet.loops.reshape

    modules = [scratchnet.loops.convolution, scratchnet.loops.normalization, scratchnet.loops.pooling]
    modules.append(scratchnet.loops.reshape)
    stops = TOUR.split("## 8. Convolution")[1]
    named = re.findall(r"`(\w+)\.(forward|backward)`", stops) + [(f, "") for f in ("receptive_fields", "output_size")]
    assert len(named) >= 8
    for owner, method in named:
        found = [getattr(module, owner) for module in modules if hasattr(module, owner)]
        assert found and (not method or hasattr(found[0], method)), (owner, method)
    math = (ROOT / "spec" / "math.md").read_text()
    cited = set(re.findall(r"\((\d+\.\d+)", TOUR))
    assert {"12.1", "12.7", "13.2", "14.2", "15.9"} <= cited
    for number in cited:
        assert f"({number})" in math, number


def test_the_tours_hands_on_checks_pass() -> None:
    networks = re.findall(r'scratchnet check --network "([^"]+)"', TOUR)
    assert len(networks) >= 3
    for network in networks:
        done = run_scratchnet("check", "--network", network)
        assert done.returncode == 0 and "passed" in done.stdout, (network, done.stderr)


def test_the_tours_digit_npy_recipe_makes_what_explain_reads(data_dir: Path, tmp_path: Path) -> None:
    command = next(line.strip() for line in TOUR.splitlines() if "numpy.save('digit.npy'" in line)
    code = command.removeprefix('python -c "').removesuffix('"').replace("/path/to/data", str(data_dir))
    made = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    import numpy as np

    digit = np.load(tmp_path / "digit.npy")
    assert digit.shape == (28, 28) and digit.dtype == np.uint8 and digit.max() == 255
