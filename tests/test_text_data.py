"""Text data for language models: layouts, vocabulary, splits, batches, errors and memory
(scratchnet/data/text.py, text_reading.py, text_batches.py)."""

from __future__ import annotations

import hashlib
import json
import string
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from subprocesses import run_without

import scratchnet.data.text_reading as text_reading
from scratchnet.core import rng
from scratchnet.core.errors import DatasetError, ScratchnetError
from scratchnet.data.text import DOCUMENTS, RUNNING, TextData, Vocabulary, file_identity, load_recorded_text, load_text
from scratchnet.data.text_batches import (
    IGNORE_INDEX,
    evaluation_batches,
    steps_per_epoch,
    target_count,
    training_batch,
)

BACKENDS = ["loops", "vectorized"]
# Ten names: 1 of them is held out (makemore: min(1000, int(10 * 0.1))). Their letters a b e m o v get
# ids 0..5, and the boundary token id 6.
NAMES = ["emma", "ava", "bob", "emma", "ava", "bob", "mae", "abe", "mob", "vee"]
ID = {c: i for i, c in enumerate("abemov")}
B = 6


def write(tmp_path: Path, text: str | bytes, name: str = "t.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def framed(name: str) -> list[int]:
    return [B] + [ID[c] for c in name] + [B]


def as_lists(batch: tuple[Any, Any]) -> tuple[list[list[int]], list[list[int]]]:
    inputs, targets = batch
    if isinstance(inputs, np.ndarray):
        assert inputs.dtype == np.int64 and targets.dtype == np.int64
        return inputs.tolist(), targets.tolist()
    return inputs, targets


def one_line_error(call: Any, *words: str) -> str:
    with pytest.raises(DatasetError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, ScratchnetError), message
    for word in words:
        assert word in message, message
    return message


# ---- layouts and vocabulary ----


@pytest.mark.parametrize("backend", BACKENDS)
def test_documents_vocabulary_and_ids_by_hand(tmp_path: Path, backend: str) -> None:
    data = load_text(write(tmp_path, "\n".join(NAMES) + "\n"), backend=backend)
    assert data.layout == DOCUMENTS and "documents (detected" in data.description
    assert data.vocabulary.characters == "abemov" and data.vocabulary.size == 7 and data.vocabulary.boundary_id == B
    expected = [B]
    for name in NAMES:
        expected += [ID[c] for c in name] + [B]
    assert list(map(int, data.ids)) == expected
    boundaries = [i for i, v in enumerate(expected) if v == B]
    assert [data.document_span(i) for i in range(10)] == list(zip(boundaries, boundaries[1:]))
    held = rng.permutation(data.split.seed or 0, 0, 10)[-1:]  # eq. 10.4's permutation, its last entry
    assert list(map(int, data.held_out_documents)) == held
    assert sorted([*map(int, data.train_documents), *held]) == list(range(10))


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_vocabulary_and_ids_by_hand(tmp_path: Path, backend: str) -> None:
    text = "to be, or\nnot to be\n" * 3
    data = load_text(write(tmp_path, text), backend=backend)
    assert data.layout == RUNNING and "line 1 has a space inside" in data.description
    assert data.vocabulary.characters == "\n ,benort" and data.vocabulary.boundary_id is None
    assert list(map(int, data.ids)) == ["\n ,benort".index(c) for c in text]
    assert (data.split.train, data.split.held_out) == (54, 6)  # int(60 * 0.9)


def test_documents_strip_lines_and_skip_blank_ones_as_makemore(tmp_path: Path) -> None:
    data = load_text(write(tmp_path, " emma \r\n\n\t\nava\r\n" + "bob\n" * 8, "crlf.txt"))
    assert data.layout == DOCUMENTS and data.split.train + data.split.held_out == 10
    assert data.vocabulary.characters == "abemov"


def test_a_byte_order_mark_is_not_text(tmp_path: Path) -> None:
    data = load_text(write(tmp_path, b"\xef\xbb\xbf" + "\n".join(NAMES).encode()))
    assert data.vocabulary.characters == "abemov"


def test_layout_chosen_by_the_caller_is_said(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join(NAMES))
    data = load_text(path, layout=RUNNING)
    assert data.layout == RUNNING and "running (as asked)" in data.description
    assert data.vocabulary.characters == "\nabemov"
    spaced = load_text(write(tmp_path, "\n".join(["mary ann", *NAMES]), "s.txt"), layout=DOCUMENTS)
    assert spaced.vocabulary.characters == " abemnorvy" and spaced.vocabulary.size == 11


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("emma\n" + "am" * 40 + "\n" + "emma\n" * 10, "line 2 has 80 characters"),
        ("emma\nemma ma\n" + "emma\n" * 10, "line 2 has a space inside"),
        ("\n\nemmaemma\n\n\n", "fewer than two lines"),
    ],
)
def test_detector_says_why_it_chose_running_text(tmp_path: Path, text: str, why: str) -> None:
    data = load_text(write(tmp_path, text))
    assert data.layout == RUNNING and why in data.description


def test_vocabulary_encode_decode_and_json(tmp_path: Path) -> None:
    vocabulary = Vocabulary("abemov", boundary=True)
    assert vocabulary.encode("emma") == [2, 3, 3, 0]
    assert vocabulary.decode([6, 2, 3, 3, 0, 6]) == "\nemma\n"
    recorded = json.loads(json.dumps(vocabulary.to_dict()))
    assert Vocabulary.from_dict(recorded) == vocabulary
    assert Vocabulary.from_dict(json.loads(json.dumps(Vocabulary("\n é").to_dict()))).characters == "\n é"
    one_line_error(
        lambda: Vocabulary("\nabemov").encode("emma\nzoé", "the prefix"), "the prefix line 2", "'z' (U+007A)"
    )
    one_line_error(lambda: vocabulary.encode("em\nma"), "line 1", "'\\n' (U+000A)")
    one_line_error(lambda: Vocabulary.from_dict({"characters": 3}), "not understood")
    one_line_error(lambda: Vocabulary("ba"), "sorted")
    one_line_error(lambda: vocabulary.decode([0, 7]), "token id 7")
    one_line_error(lambda: vocabulary.decode([-100]), "token id -100")


# ---- splits ----


@pytest.mark.parametrize(("count", "held"), [(10, 1), (25, 2), (999, 99), (20_000, 1000)])
def test_documents_hold_out_min_1000_or_10_percent(tmp_path: Path, count: int, held: int) -> None:
    names = [format(i + 2, "b").replace("0", "a").replace("1", "b") for i in range(count)]  # ba, bb, baa, ...
    data = load_text(write(tmp_path, "\n".join(names[:count])))
    assert (data.split.train, data.split.held_out) == (count - held, held)
    again = load_text(write(tmp_path, "\n".join(names[:count]), "again.txt"))
    assert list(again.held_out_documents) == list(data.held_out_documents)
    other = load_text(write(tmp_path, "\n".join(names[:count]), "other.txt"), seed=(data.split.seed or 0) + 1)
    assert count < 20 or list(other.held_out_documents) != list(data.held_out_documents)


@pytest.mark.parametrize(("count", "held", "seed"), [(1, 1, 0), (7, 3, 5), (50, 5, 9), (300, 300, 2), (1000, 17, 3407)])
def test_held_out_documents_are_the_permutations_last_entries(count: int, held: int, seed: int) -> None:
    expected = sorted(rng.permutation(seed, 0, count)[count - held :])
    assert text_reading.held_out_documents(count, held, seed, 0) == expected


def test_running_split_is_the_first_90_percent(tmp_path: Path) -> None:
    data = load_text(write(tmp_path, "ab cd\n" * 17 + "a"))  # 103 characters
    assert (data.split.train, data.split.held_out) == (92, 11) and data.split.seed is None


# ---- batches ----


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_document_per_step_goes_through_every_training_name_once_an_epoch(tmp_path: Path, backend: str) -> None:
    data = load_text(write(tmp_path, "\n".join(NAMES)), backend=backend)
    training = [NAMES[int(i)] for i in data.train_documents]
    rows = [as_lists(training_batch(data, step, 1, 16, seed=5)) for step in range(9)]
    seen = sorted(tuple(inputs[0]) for inputs, _ in rows)
    assert seen == sorted(tuple(framed(name)[:-1]) for name in training)  # no padding: one document a row
    for inputs, targets in rows:
        assert targets[0] == [*inputs[0][1:], B]
    next_epoch = sorted(tuple(as_lists(training_batch(data, step, 1, 16, seed=5))[0][0]) for step in range(9, 18))
    assert next_epoch == seen
    assert steps_per_epoch(data, 1) == 9 and steps_per_epoch(data, 4) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_document_batches_are_padded_with_the_ignore_index(tmp_path: Path, backend: str) -> None:
    data = load_text(write(tmp_path, "\n".join(["emma", "bo"] * 5)), backend=backend)
    inputs, targets = as_lists(training_batch(data, 0, 9, 16, seed=1))
    rows = sorted(zip(map(tuple, inputs), map(tuple, targets)))
    boundary = 5  # a b e m o, then the boundary
    emma = ((boundary, 2, 3, 3, 0), (2, 3, 3, 0, boundary))
    bo = ((boundary, 1, 4, boundary, boundary), (1, 4, boundary, IGNORE_INDEX, IGNORE_INDEX))
    assert sorted(set(rows)) == sorted([emma, bo]) and len(rows) == 9


@pytest.mark.parametrize("backend", BACKENDS)
def test_documents_are_cut_to_the_context_in_training_and_scored_whole(tmp_path: Path, backend: str) -> None:
    data = load_text(write(tmp_path, "\n".join(["ava"] * 10)), backend=backend)
    inputs, targets = as_lists(training_batch(data, 0, 1, 2, seed=1))
    a, v, boundary = 0, 1, 2
    assert (inputs, targets) == ([[boundary, a]], [[a, v]])  # microgpt: the first `context` positions
    expected = [([[boundary, a], [v, a]], [[a, v], [a, boundary]])]
    assert [as_lists(b) for b in evaluation_batches(data, 2, 8)] == expected
    assert target_count(data) == 4  # a, v, a and the end token


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_blocks_are_contiguous_slices_of_the_training_text(tmp_path: Path, backend: str) -> None:
    letters = "".join(sorted(string.ascii_letters + string.digits))  # 62 distinct characters
    text = letters + "\n" * 8  # 70 characters: 63 for training
    data = load_text(write(tmp_path, text), backend=backend)
    assert data.split.train == 63
    ids = [p + 1 for p in range(62)] + [0] * 8  # "\n" sorts first: the letter at position p has id p + 1
    starts = set()
    for step in range(200):
        inputs, targets = as_lists(training_batch(data, step, 4, 8, seed=3))
        for x, y in zip(inputs, targets):
            i = x[0] - 1
            assert x == ids[i : i + 8] and y == ids[i + 1 : i + 9]  # x[i:i+T], x[i+1:i+T+1]
            starts.add(i)
    assert starts == set(range(63 - 8))  # every start 0 .. train - T - 1, none that reads held-out text


@pytest.mark.parametrize("backend", BACKENDS)
def test_running_evaluation_blocks_count_every_position_once(tmp_path: Path, backend: str) -> None:
    text = "abcdefghi\n" * 4  # 40 characters: the last 4 (f g h i... here "ghi\n") held out
    data = load_text(write(tmp_path, text), layout=RUNNING, backend=backend)
    g, h, i, nl = (data.vocabulary.characters.index(c) for c in "ghi\n")
    batches = [as_lists(b) for b in evaluation_batches(data, 2, 8)]
    assert batches == [([[g, h], [i, 0]], [[h, i], [nl, IGNORE_INDEX]])]
    assert target_count(data) == 3
    train = [as_lists(b) for b in evaluation_batches(data, 5, 100, part="train")]
    assert sum(v != IGNORE_INDEX for row in train[0][1] for v in row) == target_count(data, "train") == 35


@pytest.mark.parametrize("path", ["names/names.txt", "tinyshakespeare/input.txt"])
def test_both_backends_give_the_same_batches(data_dir: Path, path: str) -> None:
    loops, vectorized = (load_text(data_dir / path, backend=backend) for backend in BACKENDS)
    assert isinstance(vectorized.ids, np.ndarray) and vectorized.ids.dtype == np.uint8
    assert loops.ids.typecode == "B" and loops.vocabulary == vectorized.vocabulary
    for step in (0, 1, 999, 31_033):
        assert as_lists(training_batch(loops, step, 12, 16, 7)) == as_lists(training_batch(vectorized, step, 12, 16, 7))
    first = [as_lists(b) for _, b in zip(range(3), evaluation_batches(loops, 16, 50))]
    assert first == [as_lists(b) for _, b in zip(range(3), evaluation_batches(vectorized, 16, 50))]


# ---- the real files ----


def test_names(data_dir: Path) -> None:
    data = load_text(data_dir / "names" / "names.txt")
    # 32,033 names: the README's 32,032 lines count newlines, and the last name has none (makemore reads 32,033)
    assert data.layout == DOCUMENTS and (data.split.train, data.split.held_out) == (31_033, 1000)
    assert data.vocabulary.characters == string.ascii_lowercase and data.vocabulary.size == 27
    leading, trailing = data.document_span(0)
    assert data.vocabulary.decode(data.ids[leading : trailing + 1]) == "\nemma\n"
    leading, trailing = data.document_span(32_032)
    assert data.vocabulary.decode(data.ids[leading : trailing + 1]) == "\nzzyzx\n"
    assert data.size == 228_145 and data.sha256.startswith("0a30b555")


def test_tinyshakespeare(data_dir: Path) -> None:
    data = load_text(data_dir / "tinyshakespeare" / "input.txt", backend="vectorized")
    assert data.layout == RUNNING and data.vocabulary.size == 65
    assert (data.split.train, data.split.held_out) == (1_003_854, 111_540)
    assert data.vocabulary.decode(data.ids[:14].tolist()) == "First Citizen:"
    assert target_count(data) == sum(int((t != IGNORE_INDEX).sum()) for _, t in evaluation_batches(data, 64, 256))


def test_file_identity(tmp_path: Path) -> None:
    path = write(tmp_path, "hello\n" * 1000)
    expected = {"size": 6000, "sha256": hashlib.sha256(b"hello\n" * 1000).hexdigest()}
    assert file_identity(str(path)) == expected
    data = load_text(write(tmp_path, "hello world\n" * 10, "w.txt"))
    assert data.source["size"] == 120 and data.source["sha256"] == hashlib.sha256(b"hello world\n" * 10).hexdigest()


# ---- errors ----


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    one_line_error(lambda: load_text(write(tmp_path, b"ab\ncd\ne\xff\n")), "t.txt line 3", "not UTF-8", "0xff")
    big = ("abcdefghi\n" * 150_000).encode() + "é\n".encode() + b"x\x80\n"  # past the first 1 MiB chunk
    one_line_error(lambda: load_text(write(tmp_path, big, "big.txt")), "big.txt line 150002", "0x80")


def test_a_character_split_across_chunks_is_read(tmp_path: Path) -> None:
    text = "a" * (text_reading.CHUNK_BYTES - 1) + "é\n" + "b c\n" * 100_000  # é's two bytes straddle the chunk end
    assert load_text(write(tmp_path, text)).vocabulary.characters == "\n abcé"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("empty",)),
        (b"\xef\xbb\xbf", ("empty",)),
        (b"aaaa", ("line 1", "'a' (U+0061)", "two or more")),
        (b"\n\n\n", ("line 1", "'\\n' (U+000A)")),
        (b"zz\nz\nzzz\n" * 4, ("line 1", "'z'")),
    ],
)
def test_empty_or_single_character_files(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    one_line_error(lambda: load_text(write(tmp_path, content)), "t.txt", *words)


def test_a_held_out_character_the_training_text_lacks(tmp_path: Path) -> None:
    text = "abab\n" * 18 + "ab\nabé\n"  # 97 characters: é is in the last 10%, on line 20
    one_line_error(
        lambda: load_text(write(tmp_path, text), layout=RUNNING),
        "t.txt line 20",
        "'é' (U+00E9)",
        "not in the vocabulary",
    )
    held = rng.permutation(3407, 0, 10)[-1]
    names = ["ab"] * 10
    names[held] = "abz"
    one_line_error(lambda: load_text(write(tmp_path, "\n".join(names), "d.txt")), f"d.txt line {held + 1}", "'z'")


def test_another_file_is_read_with_the_models_vocabulary(tmp_path: Path) -> None:
    vocabulary = Vocabulary("abemov", boundary=True)
    data = load_text(write(tmp_path, "ava\nbob\n"), layout=DOCUMENTS, vocabulary=vocabulary)
    assert (data.split.train, data.split.held_out) == (0, 2) and target_count(data) == 8
    one_line_error(lambda: training_batch(data, 0, 1, 16, 0), "no training documents")
    bad = write(tmp_path, "ava\n\nbob\nbox\n", "bad.txt")
    one_line_error(lambda: load_text(bad, layout=DOCUMENTS, vocabulary=vocabulary), "bad.txt line 4", "'x'")
    running = Vocabulary("\nab")
    assert load_text(write(tmp_path, "ab\nba\n", "r.txt"), layout=RUNNING, vocabulary=running).split.held_out == 6
    one_line_error(
        lambda: load_text(write(tmp_path, "ab\nbc\n", "c.txt"), layout=RUNNING, vocabulary=running),
        "c.txt line 2",
        "'c'",
    )
    one_line_error(lambda: load_text(bad, layout=RUNNING, vocabulary=vocabulary), "reads documents, not running")


def test_files_that_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_line_error(lambda: load_text(tmp_path / "missing.txt"), "missing.txt: no such file")
    one_line_error(lambda: load_text(tmp_path), "is a folder")
    long_line = "emma\n" * 20 + "e" * (text_reading.MAX_DOCUMENT_CHARS + 1) + "\n"
    one_line_error(
        lambda: load_text(write(tmp_path, long_line), layout=DOCUMENTS), "t.txt line 21", "too long for a document"
    )
    assert load_text(write(tmp_path, long_line, "r.txt")).layout == RUNNING
    one_line_error(lambda: load_text(write(tmp_path, "ab\nba\n" * 4, "few.txt")), "too few to hold 10% out")
    monkeypatch.setattr(text_reading, "MAX_TEXT_BYTES", 100)
    one_line_error(lambda: load_text(write(tmp_path, "ab cd\n" * 20, "large.txt")), "120 bytes, more than the 100")


def test_bad_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join(NAMES))
    one_line_error(lambda: load_text(path, layout="lines"), "unknown text layout 'lines'")
    one_line_error(lambda: load_text(path, backend="gpu"), "unknown backend")
    data = load_text(write(tmp_path, "ab\n" * 4, "short.txt"), layout=RUNNING)
    one_line_error(lambda: training_batch(data, 0, 2, 16, 0), "too few for a context of 16")
    one_line_error(lambda: next(evaluation_batches(data, 4, 2, part="test")), "unknown part")


# ---- without NumPy, and memory ----


def test_text_data_works_without_numpy(data_dir: Path) -> None:
    script = f"""
        from scratchnet.data.text import load_text
        from scratchnet.data.text_batches import evaluation_batches, training_batch
        data = load_text({str(data_dir / "names" / "names.txt")!r})
        inputs, targets = training_batch(data, 0, 4, 16, 0)
        assert len(inputs) == 4 and next(evaluation_batches(data, 16, 8))
        assert "numpy" not in sys.modules
        print("read without numpy", data.vocabulary.size)
        """
    result = run_without("numpy", script)
    assert result.returncode == 0, result.stderr
    assert "read without numpy 27" in result.stdout


def generated_text(path: Path, size: int) -> None:
    """``size`` bytes of varied running text (a few distinct lines, shuffled by a fixed rule)."""
    words = ["the", "king", "hath", "spoken", "and", "we", "obey", "thee", "lord", "fair"]
    lines = [" ".join(words[(i * 7 + j * 3) % 10] for j in range(i % 9 + 2)) + "\n" for i in range(97)]
    block = "".join(lines).encode() * 64
    with path.open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_20_mb_file_loads_with_the_memory_of_about_one_copy(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "big.txt"
    size = 20 * 1024 * 1024
    generated_text(path, size)
    tracemalloc.start()
    try:
        data: TextData = load_text(path, backend=backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data.ids) == size and data.layout == RUNNING
    assert peak < 1.5 * size, f"peak {peak / size:.2f}x the file size"


# ---- a vocabulary over 256 tokens, and the recorded text found again ----


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vocabulary_over_256_characters_takes_16_bit_ids(tmp_path: Path, backend: str) -> None:
    # 60,000 distinct characters from U+20000 on (4 bytes each in UTF-8): ids reach past 0xD800..0xDFFF,
    # which a 16-bit text encoding reserves for surrogates
    characters = "".join(chr(0x20000 + i) for i in range(60_000))
    text = (characters + "\n") * 10
    data = load_text(write(tmp_path, text), layout=RUNNING, backend=backend)
    assert data.vocabulary.size == 60_001 and data.vocabulary.characters == "\n" + characters
    expected = ([*range(1, 60_001), 0]) * 10
    if backend == "vectorized":
        assert data.ids.dtype == np.uint16 and data.ids.tolist() == expected
    else:
        assert data.ids.typecode == "H" and data.ids.tolist() == expected
    assert data.vocabulary.decode(data.ids[:3]) == characters[:3]


@pytest.mark.parametrize("layout", [DOCUMENTS, RUNNING])
def test_the_recorded_text_is_found_again_by_size_and_hash(tmp_path: Path, layout: str) -> None:
    text = "\n".join(NAMES * 3) + "\n"
    path = write(tmp_path, text)
    trained = load_text(path, layout=layout, seed=11)
    record = json.loads(json.dumps(trained.source))
    again = load_recorded_text(record, trained.vocabulary, backend="vectorized")
    assert list(again.ids) == list(trained.ids) and again.split == trained.split
    if layout == DOCUMENTS:
        assert list(again.held_out_documents) == list(trained.held_out_documents) and trained.split.seed == 11
    path.write_text(text[:-1] + "\r")  # one byte changed: the same size
    one_line_error(lambda: load_recorded_text(record, trained.vocabulary), "t.txt", "sha256 differs")
    path.write_text(text[:-1])
    one_line_error(lambda: load_recorded_text(record, trained.vocabulary), "t.txt", "bytes, not")
    path.unlink()
    one_line_error(lambda: load_recorded_text(record, trained.vocabulary), "not there any more")
    one_line_error(lambda: load_recorded_text({"path": 3}, trained.vocabulary), "does not record the text")


def test_documents_are_found_across_chunks_by_the_sparse_index(tmp_path: Path) -> None:
    names = [format(i, "x").replace("0", "g") for i in range(1, 250_001)]  # 1.4 MB: two chunks, hex-like names
    data = load_text(write(tmp_path, "\n".join(names) + "\n"))
    assert data.layout == DOCUMENTS and data.split.held_out == 1000
    for i in [0, 1, 31, 32, 33, 100_000, 149_999, 150_000, 249_998, 249_999]:
        leading, trailing = data.document_span(i)
        assert data.vocabulary.decode(data.ids[leading : trailing + 1]) == f"\n{names[i]}\n", i
    held = set(data.held_out_documents)
    training = [i for i in range(len(names)) if i not in held]
    assert len(data.train_documents) == len(training) and list(data.train_documents) == training
    assert [data.train_documents[k] for k in range(0, len(training), 997)] == training[::997]
    everything = sum(len(n) + 1 for n in names)
    assert target_count(data, "train") + target_count(data) == everything
    assert target_count(data) == sum(len(names[i]) + 1 for i in held)


@given(st.lists(st.text(alphabet="ab cé\n\t", min_size=1, max_size=12), min_size=12, max_size=30))
def test_ids_decode_to_the_text_read(lines: list[str]) -> None:
    text = "\n".join(lines)
    documents = [line.strip() for line in text.split("\n") if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.txt"
        path.write_text(text, encoding="utf-8")
        for layout in (RUNNING, DOCUMENTS):
            try:
                data = load_text(path, layout=layout)
            except DatasetError as error:  # a held-out character the training text lacks, too few documents...
                assert "\n" not in str(error)
                continue
            decoded = data.vocabulary.decode(data.ids)
            if layout == RUNNING:
                assert decoded == text and data.split.train == int(0.9 * len(text))
                assert steps_per_epoch(data, 4) is None
            else:
                assert decoded == "\n" + "".join(d + "\n" for d in documents)
                assert data.split.train + data.split.held_out == len(documents)
