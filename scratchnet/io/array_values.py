"""Checks of the values of a model's arrays, on their little-endian bytes, with the standard library
only: the first NaN or infinity (spec/model-format.md section 3, check 7) and the first negative
value where the values must be >= 0 (a running variance)."""

from __future__ import annotations

import struct

from scratchnet.io.npy import NpyArray

__all__ = ["first_negative", "first_non_finite", "value_at"]

# Finiteness, tested on the bytes: a float is NaN or infinite exactly when all its exponent bits are
# set, and in little-endian order those are the top two bytes of each item. _TOP marks the items whose
# last byte holds all its exponent bits (0x7F or 0xFF); _NEXT, by itemsize, those whose byte before
# holds the rest (float32: bit 7; float64: bits 4-7). Both marks are 0x80, so one AND combines them.
_TOP = bytes(0x80 if b & 0x7F == 0x7F else 0 for b in range(256))
_NEXT = {4: bytes(b & 0x80 for b in range(256)), 8: bytes(0x80 if b & 0xF0 == 0xF0 else 0 for b in range(256))}
_UNPACK = {4: "<f", 8: "<d"}


def first_negative(array: NpyArray) -> int | None:
    """The flat index of the first value < 0 in a ``<f4``/``<f8`` array, or None (-0.0 is not < 0).

    The sign is the top bit of each item's last byte; only items with it set are unpacked.
    """
    size = array.itemsize
    signs = array.data[size - 1 :: size]
    for index, top in enumerate(signs):
        if top & 0x80 and struct.unpack_from(_UNPACK[size], array.data, index * size)[0] < 0.0:
            return index
    return None


def first_non_finite(array: NpyArray) -> int | None:
    """The flat (C-order) index of the first NaN or infinity in a ``<f4``/``<f8`` array, or None if all are finite.

    Standard library and fast: strided slices and ``bytes.translate`` run in C, milliseconds per million values.
    """
    if array.dtype not in ("<f4", "<f8"):
        raise ValueError(f"first_non_finite needs a float array, got dtype {array.dtype!r}")
    size = array.itemsize
    top = array.data[size - 1 :: size].translate(_TOP)
    if 0x80 not in top:  # the usual case: no value has a full top byte, so every value is finite
        return None
    low = array.data[size - 2 :: size].translate(_NEXT[size])
    both = int.from_bytes(top, "little") & int.from_bytes(low, "little")
    if not both:
        return None
    return ((both & -both).bit_length() - 1) // 8  # the lowest set bit is the first such item


def value_at(array: NpyArray, index: int) -> str:
    """``nan at [1, 2]``: the value at flat ``index`` and where it is."""
    value = struct.unpack_from(_UNPACK[array.itemsize], array.data, index * array.itemsize)[0]
    position: list[int] = []
    for dim in reversed(array.shape):
        index, rest = divmod(index, dim)
        position.append(rest)
    return f"{value!r} at {position[::-1]}"
