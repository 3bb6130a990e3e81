"""First use, round two (issue 25): what a new user tripped over, each done as the user did it."""

from __future__ import annotations

import json
import re
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
