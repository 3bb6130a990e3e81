"""``scratchnet sample MODEL`` (issue 27, item 3) on tiny models trained here through ``scratchnet train``:
the same text for a seed in either backend, the prefix starting every line, greedy top-k 1 against the argmax
of the full forward pass computed here, new-name counts computed here, the text streamed into a pipe, and
one-line errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from subprocesses import ROOT, run_scratchnet, run_without
from test_decoding import gpt_stack

from scratchnet.cli.sample_new import Known, new_report
from scratchnet.io.model import load_model

SMALL_GPT = (
    "embedding(16), positions(16), residual(rmsnorm, attention(4)), residual(rmsnorm, dense(32), relu, dense(16)), "
    "rmsnorm"
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
BOUNDARY = 26  # the names' vocabulary: the 26 letters, then the boundary token


def train(data: Path, out: Path, *extra: str) -> Path:
    trained = run_scratchnet(
        "train", "--data", str(data), "--layers", SMALL_GPT, "--steps", "20", "--batch-size", "8", "--lr", "0.01",
        "--no-check", "--out", str(out), *extra,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return out


@pytest.fixture(scope="module")
def names_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 names (lines 201-400 of names.txt: the held-out 20 use only letters the other 180 have)."""
    path = tmp_path_factory.mktemp("names") / "names.txt"
    lines = (data_dir / "names" / "names.txt").read_text().splitlines()[200:400]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def names_model(names_file: Path) -> Path:
    return train(names_file, names_file.parent / "names.json")


@pytest.fixture(scope="module")
def shakespeare_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shakespeare")
    path = folder / "shakespeare.txt"
    path.write_bytes((data_dir / "tinyshakespeare" / "input.txt").read_bytes()[:20000])
    return train(path, folder / "shakespeare.json", "--context", "16")


def sampled(model: Path, *args: str) -> list[str]:
    result = run_scratchnet("sample", str(model), *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")
    return result.stdout[:-1].split("\n")


def test_a_seed_gives_the_same_names_in_either_backend(names_model: Path) -> None:
    loops = sampled(names_model, "--count", "12", "--seed", "7", "--backend", "loops")
    vectorized = sampled(names_model, "--count", "12", "--seed", "7", "--backend", "vectorized")
    assert loops == vectorized
    assert len(loops) == 12 and all(line and set(line) <= set(LETTERS) for line in loops)
    assert sampled(names_model, "--count", "12", "--seed", "7") == loops  # the default backend, again
    assert sampled(names_model, "--count", "12", "--seed", "8") != loops
    # sample k is the same whatever the count: the draws are indexed by sample and position
    assert sampled(names_model, "--count", "3", "--seed", "7") == loops[:3]


def test_every_line_starts_with_the_prefix_and_stops_at_the_length(names_model: Path) -> None:
    lines = sampled(names_model, "--count", "15", "--prefix", "mar", "--length", "4", "--temperature", "1.5")
    assert len(lines) == 15
    assert all(line.startswith("mar") and len(line) <= 3 + 4 and set(line) <= set(LETTERS) for line in lines)
    assert any(len(line) == 7 for line in lines)  # a hot temperature runs some names into the length


def greedy(model: Path, prefix: str, length: int) -> str:
    """The likeliest next letter again and again, from the whole sequence's forward pass each time (no
    cache), until the boundary token or ``length`` new letters."""
    network = load_model(model, backend="vectorized").network
    ids = [BOUNDARY] + [LETTERS.index(c) for c in prefix]
    for _ in range(length):
        probabilities = np.asarray(network.forward([ids]), dtype=np.float64)[0, -1]
        best = int(np.argmax(probabilities))
        if best == BOUNDARY:
            break
        ids.append(best)
    return "".join(LETTERS[i] for i in ids[1:])


@pytest.mark.parametrize("backend", ["loops", "vectorized"])
def test_greedy_top_k_1_is_the_argmax_of_the_full_forward_pass(names_model: Path, backend: str) -> None:
    context = load_model(names_model).architecture["input_shape"][0]
    for prefix in ("", "a", "jo"):
        length = context - 1 - len(prefix)  # within the context: no window slides
        expected = greedy(names_model, prefix, length)
        got = sampled(names_model, "--prefix", prefix, "--top-k", "1", "--count", "2", "--length", str(length),
                      "--backend", backend, "--seed", "5")  # fmt: skip
        assert got == [expected, expected]


def report(result: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    """(new, of, held out among the new) from ``N of M samples are new (not in ...[; K of them ...])``."""
    found = re.search(r"^(\d+) of (\d+) samples (?:is|are) new \(not in [^;)]*(?:; (\d+) of them [^)]*)?\)$",
                      result.stderr, flags=re.MULTILINE)  # fmt: skip
    assert found is not None, result.stderr
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def test_new_names_are_counted_against_the_training_names(names_model: Path, names_file: Path) -> None:
    result = run_scratchnet("sample", str(names_model), "--count", "40", "--new", "--temperature", "0.7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    new, of, held = report(result)
    assert of == 40
    everything = set(names_file.read_text().split())
    assert new - held == sum(line not in everything for line in lines)  # in neither part of the file
    assert 0 <= held <= 20 and new <= 40


def test_data_counts_the_samples_that_are_not_its_lines(names_model: Path, tmp_path: Path) -> None:
    lines = sampled(names_model, "--count", "10", "--seed", "11")
    given = tmp_path / "given.txt"
    given.write_text("\n".join([*lines[:4], "zzzz", "qqq"]) + "\n")
    result = run_scratchnet("sample", str(names_model), "--count", "10", "--seed", "11", "--data", str(given))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines
    expected = sum(line not in set(lines[:4]) for line in lines)
    assert report(result) == (expected, 10, 0)
    assert f"(not in the lines of {given})" in result.stderr


def test_the_new_count_needs_the_recorded_text_unchanged(names_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "names.txt"
    shutil.copyfile(names_file, copy)
    model = train(copy, tmp_path / "m.json")
    copy.write_bytes(copy.read_bytes().replace(b"a", b"e", 1))  # the same size, another hash
    changed = run_scratchnet("sample", str(model), "--new")
    assert changed.returncode == 1 and changed.stdout == ""
    assert changed.stderr.startswith(f"scratchnet sample: error: cannot count the new samples of {model}")
    assert "has changed since the model was trained on it" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1
    copy.unlink()
    gone = run_scratchnet("sample", str(model), "--new")
    assert gone.returncode == 1 and "is not there any more" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1
    assert run_scratchnet("sample", str(model), "--count", "2").returncode == 0  # without --new, nothing to read


def test_the_report_goes_to_stderr_only_when_asked_off_a_terminal(names_model: Path) -> None:
    quiet = run_scratchnet("sample", str(names_model), "--count", "3")
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = run_scratchnet("sample", str(names_model), "--count", "3", "--verbose")
    assert verbose.stdout == quiet.stdout
    assert re.fullmatch(
        r"sampled 3 documents \(\d+ new characters\) in .* vectorized backend, seed 0\n", verbose.stderr
    )


def test_running_text_runs_for_the_length_from_the_prefix(shakespeare_model: Path) -> None:
    loops = run_scratchnet("sample", str(shakespeare_model), "--prefix", "ROMEO:", "--length", "80", "--seed", "2",
                           "--backend", "loops")  # fmt: skip
    vectorized = run_scratchnet("sample", str(shakespeare_model), "--prefix", "ROMEO:", "--length", "80", "--seed",
                                "2")  # fmt: skip
    assert loops.returncode == 0, loops.stderr
    assert loops.stdout == vectorized.stdout
    # the prefix and 80 characters (the context is 16: the window slid), then a newline unless the text ends in one
    text = loops.stdout[: 6 + 80]
    assert text.startswith("ROMEO:") and loops.stdout in (text, text + "\n") and len(text) == 86
    assert loops.stdout.endswith("\n")
    whole = run_scratchnet("sample", str(shakespeare_model))
    assert len(whole.stdout.rstrip("\n")) in (499, 500)  # 500 by default (a last newline is the text's own)
    two = run_scratchnet("sample", str(shakespeare_model), "--count", "2", "--length", "30", "--prefix", "A")
    one = run_scratchnet("sample", str(shakespeare_model), "--count", "1", "--length", "30", "--prefix", "A")
    assert two.returncode == 0 and len(two.stdout) >= 2 * 31
    first, second = one.stdout, two.stdout[len(one.stdout) + 1 :]
    assert two.stdout == first + "\n" + second  # sample 0 as alone, a blank line, then sample 1
    assert second.startswith("A") and len(second) in (31, 32) and second.endswith("\n") and second != first


def test_the_characters_stream_into_a_pipe_and_a_closed_pipe_stops_the_sampling(shakespeare_model: Path) -> None:
    argv = ["sample", str(shakespeare_model), "--length", "1000000", "--backend", "loops"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scratchnet", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = process.stdout.read(20)  # a million characters take many minutes: these come first
        assert len(first) == 20 and process.poll() is None
        process.stdout.close()  # the reader goes: the sampling stops
        assert process.wait(timeout=60) == 141
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_input_is_one_line(names_model: Path, shakespeare_model: Path, tmp_path: Path) -> None:
    import scratchnet
    from scratchnet.builders import build_network
    from scratchnet.core import notation

    image_model = tmp_path / "mlp.json"
    scratchnet.save(build_network(notation.parse("dense(3)", input_shape=(4,)), backend="loops"), image_model)
    cases = [
        (["--prefix", "Em"], 1, "--prefix: the character 'E' (U+0045) is not in the vocabulary of"),
        (["--prefix", "e\nm"], 1, "the character '\\n' (U+000A) is not in the vocabulary"),
        (["--temperature", "0"], 2, "argument --temperature: expected a finite number > 0, got '0'"),
        (["--temperature", "-1"], 2, "argument --temperature: expected a finite number > 0, got '-1'"),
        (["--top-p", "0"], 2, "argument --top-p: expected a number in (0, 1], got '0'"),
        (["--top-p", "1.5"], 2, "argument --top-p: expected a number in (0, 1], got '1.5'"),
        (["--top-k", "0"], 2, "argument --top-k: expected a positive integer, got '0'"),
        (["--count", "0"], 2, "argument --count: expected a positive integer, got '0'"),
        (["--length", "-3"], 2, "argument --length: expected a positive integer, got '-3'"),
        (["--data", str(tmp_path / "none.txt")], 1, "none.txt: no such file or folder"),
    ]
    for args, status, message in cases:
        result = run_scratchnet("sample", str(names_model), *args)
        assert result.returncode == status and result.stdout == "", (args, result.stdout)
        last = result.stderr.strip().splitlines()[-1]
        assert message in last and last.startswith("scratchnet sample: error: "), (args, result.stderr)
        if status == 1:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    mismatched = tmp_path / "mismatched.json"  # 7 tokens in the network, 4 in the recorded vocabulary
    network = build_network(gpt_stack(vocabulary=7), backend="loops")
    scratchnet.save(network, mismatched, metadata={"vocabulary": {"unit": "character", "characters": "abc",
                                                                   "boundary": True}})  # fmt: skip
    others = [
        ([str(image_model)], "records no vocabulary: it is not a language model"),
        ([str(mismatched)], "records a vocabulary of 4 tokens, but its network reads 7 and scores 7"),
        ([str(shakespeare_model), "--new"], "--new counts new documents, and"),
        ([str(shakespeare_model), "--prefix", "\u00e9"], "'\u00e9' (U+00E9) is not in the vocabulary"),
    ]
    for args, message in others:
        result = run_scratchnet("sample", *args)
        assert result.returncode == 1 and result.stdout == "", (args, result.stdout)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_the_report_counts_the_held_out_documents_among_the_new() -> None:
    known = Known(frozenset({"emma", "ava"}), frozenset({"mia", "zoe"}), "the training set")
    samples = ["emma", "mia", "mia", "bob", "ava", "zoe"]
    assert new_report(samples, known) == (
        "4 of 6 samples are new (not in the training set; 3 of them are among the held-out documents)"
    )
    assert new_report(["mia", "emma"], known) == (
        "1 of 2 samples is new (not in the training set; 1 of them is among the held-out documents)"
    )
    assert new_report(["emma"], known) == "0 of 1 samples are new (not in the training set)"


def test_sampling_and_counting_need_no_numpy_with_the_loops_backend(names_model: Path) -> None:
    expected = sampled(names_model, "--count", "4", "--seed", "3", "--new")
    script = f"""
from scratchnet.cli import main
sys.exit(main(["sample", {str(names_model)!r}, "--count", "4", "--seed", "3", "--new", "--backend", "loops"]))
"""
    result = run_without("numpy", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    assert re.fullmatch(r"\d of 4 samples (is|are) new \(not in the training set[^)]*\)\n", result.stderr)


def test_on_a_terminal_the_report_comes_without_verbose(names_model: Path) -> None:
    import os
    import pty

    leader, follower = pty.openpty()  # stderr a terminal, stdout a pipe
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "scratchnet", "sample", str(names_model), "--count", "2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        out, _ = process.communicate(timeout=60)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert process.returncode == 0 and len(out.splitlines()) == 2
    assert re.match(rb"sampled 2 documents \(\d+ new characters\) in ", shown), shown


def test_a_control_character_is_escaped_on_a_terminal_only() -> None:
    from scratchnet.cli.sample import shown

    assert shown("\x1b", terminal=True) == "\\x1b" and shown("\u202e", terminal=True) == "\\u202e"
    assert shown("\n", terminal=True) == "\n" and shown("\t", terminal=True) == "\t"
    assert shown("\x1b", terminal=False) == "\x1b" and shown("é", terminal=True) == "é"
