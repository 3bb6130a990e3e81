"""The pieces of the training loop: seeded shifts, input scaling, the progress bar."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.builders import build_network
from scratchnet.core import notation
from scratchnet.data.images import Feeder, flip_images, shift_images, to_inputs
from scratchnet.training import inference as train_module
from scratchnet.training.progress import Progress


def test_shifts_are_seeded_bounded_and_move_whole_images() -> None:
    images = np.zeros((50, 28, 28), np.uint8)
    images[:, 10:18, 9:19] = np.arange(1, 81, dtype=np.uint8).reshape(8, 10)  # content away from the border
    a = shift_images(images, 2, seed=5, stream=3)
    assert np.array_equal(a, shift_images(images, 2, seed=5, stream=3))
    assert not np.array_equal(a, shift_images(images, 2, seed=5, stream=4))
    moves = set()
    for original, shifted in zip(images, a):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(np.roll(original, (dy, dx), axis=(0, 1)), shifted)
        ]
        assert len(found) == 1
        moves.add(found[0])
    assert len(moves) > 10  # many of the 25 possible shifts occur
    assert shift_images(images, 0, seed=5, stream=3) is images


def test_shifts_fill_with_zeros_at_the_border() -> None:
    image = np.full((1, 28, 28), 255, np.uint8)
    shifted = shift_images(image, 1, seed=0, stream=0)[0]
    dark = shifted == 0
    assert dark.sum() in (0, 28, 55)  # no move, one row or column, or one of each
    assert shifted.dtype == np.uint8


def test_inputs_are_scaled_and_normalised_per_batch() -> None:
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    assert np.allclose(to_inputs(images, "float32"), [[0.0, 1.0, 0.2, 0.4]])
    assert to_inputs(images, "float32").dtype == np.float32
    assert to_inputs(images, "float64").dtype == np.float64
    normalised = to_inputs(images, "float64", mean=0.5, std=0.25)
    assert np.allclose(normalised, [[-2.0, 2.0, -1.2, -0.4]])
    assert Feeder("loops", "float32").inputs(images) == [[0.0, 1.0, 0.2, 0.4]]
    metadata = Feeder(mean=0.1, std=0.3).metadata((28, 28))
    assert Feeder.from_metadata({"input": metadata}, "vectorized", "float32") == Feeder(
        "vectorized", "float32", 0.1, 0.3
    )


def test_progress_is_silent_when_piped_and_draws_on_a_terminal() -> None:
    piped = io.StringIO()
    bar = Progress(10, "epoch 1/2", stream=piped)
    for step in range(1, 11):
        bar.update(step, "loss 0.5")
    bar.close()
    assert piped.getvalue() == ""

    terminal = io.StringIO()
    bar = Progress(10, "epoch 1/2", stream=terminal, enabled=True)
    bar.update(5, "loss 0.5")
    bar.update(10, "loss 0.4")
    text = terminal.getvalue()
    assert text.startswith("\repoch 1/2  [") and "10/10" in text and "loss 0.4" in text
    bar.close()
    assert terminal.getvalue().endswith("\r")
    assert bar.render(5, "", 10.0).endswith("5/10  10 s left")


def test_flips_mirror_about_half_the_images_reproducibly() -> None:
    images = np.random.default_rng(0).integers(0, 256, (200, 28, 28)).astype(np.uint8)
    flipped = flip_images(images, seed=1, stream=2)
    assert np.array_equal(flipped, flip_images(images, seed=1, stream=2))
    mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images)]
    kept = [np.array_equal(f, i) for f, i in zip(flipped, images)]
    assert all(m != k for m, k in zip(mirrored, kept))
    assert 70 < sum(mirrored) < 130


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 20),
    side=st.integers(1, 6),
    picks=st.lists(st.integers(0, 10**6), min_size=0, max_size=30),
    transposed=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_take_images_equals_fancy_indexing(n: int, side: int, picks: list[int], transposed: bool, seed: int) -> None:
    """The block-copy gather of training batches returns exactly images[indices], also for arrays
    that are not contiguous (which it hands to fancy indexing)."""
    from scratchnet.data.images import take_images

    images = np.random.default_rng(seed).integers(0, 256, (n, side, side + 1), dtype=np.uint8)
    if transposed:
        images = images.transpose(0, 2, 1)
    indices = np.array([p % n for p in picks], dtype=np.intp)
    taken = take_images(images, indices)
    assert taken.dtype == np.uint8 and taken.shape == (len(indices), *images.shape[1:])
    assert np.array_equal(taken, images[indices])


def test_evaluation_passes_hold_no_layer_output_larger_than_eval_values() -> None:
    mlp = build_network(notation.parse("input(784), dense(800), relu, dense(10)"))
    assert train_module.eval_chunk(mlp) == 2000  # 800 values an image: the whole EVAL_CHUNK
    cnn = build_network(notation.parse("input(1x28x28), conv(32, 5), relu, maxpool(2), flatten, dense(10)"), seed=2)
    assert train_module.eval_chunk(cnn) == (1 << 22) // (32 * 24 * 24)  # the first conv's maps: 227 images
    images = np.random.default_rng(3).integers(0, 256, (600, 28, 28)).astype(np.uint8)
    feeder = Feeder(shape=(1, 28, 28))
    whole = cnn.predict(feeder.inputs(images))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "EVAL_VALUES", 32 * 24 * 24 * 7)  # 7 images a pass: 86 passes, the last short
        assert train_module.eval_chunk(cnn) == 7
        np.testing.assert_array_equal(train_module.predict_classes(cnn, images, feeder), whole)
