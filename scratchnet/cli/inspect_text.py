"""What ``scratchnet inspect`` adds for a language model: its vocabulary, and the text, layout and split
it records (``metadata["vocabulary"]``, ``["source"]``, ``["text"]``; docs/language-models.md).

Standard library only, like the rest of ``inspect``; every value comes from the file, so each is
checked for its type before it is shown, and a line of characters is shown with its control
characters escaped (:func:`scratchnet.core.text.printable`, applied by the caller to every line).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.data.text import DOCUMENTS, RUNNING

SHOWN_CHARACTERS = 200  # a longer vocabulary is cut, with the count of the rest


def language_model_lines(metadata: Mapping[str, Any]) -> list[str]:
    """``vocabulary: ...``, ``text: ...`` and ``split: ...`` lines, or none for a model that records no
    vocabulary (an image classifier)."""
    vocabulary = metadata.get("vocabulary")
    if not isinstance(vocabulary, Mapping):
        return []
    lines = [vocabulary_line(vocabulary)]
    source, text = metadata.get("source"), metadata.get("text")
    if isinstance(source, Mapping):
        lines.append(source_line(source, text if isinstance(text, Mapping) else {}))
        split = source.get("split")
        if isinstance(split, Mapping):
            lines.append(split_line(split))
    return lines


def vocabulary_line(vocabulary: Mapping[str, Any]) -> str:
    """``vocabulary: 27 tokens, 26 characters "abc...z" and the boundary token (id 26)``."""
    characters = vocabulary.get("characters")
    if not isinstance(characters, str):
        return "vocabulary: (not understood)"
    boundary = vocabulary.get("boundary") is True
    shown = characters[:SHOWN_CHARACTERS]
    more = f" and {len(characters) - len(shown):,} more" if len(characters) > len(shown) else ""
    line = f'vocabulary: {len(characters) + boundary:,} tokens, {len(characters):,} characters "{shown}"{more}'
    if boundary:
        line += f" and the boundary token (id {len(characters)}: it starts and ends every document)"
    return line


def source_line(source: Mapping[str, Any], text: Mapping[str, Any]) -> str:
    """``text: names.txt (2,000 bytes, sha256 020a5594871b...), documents, context 11``."""
    parts = []
    size, sha256 = source.get("size"), source.get("sha256")
    if isinstance(size, int) and not isinstance(size, bool):
        parts.append(f"{size:,} bytes")
    if isinstance(sha256, str):
        parts.append(f"sha256 {sha256[:12]}...")
    line = f"text: {source.get('path', '?')}" + (f" ({', '.join(parts)})" if parts else "")
    layout = text.get("layout")
    if layout == DOCUMENTS:
        line += ", documents (one a line)"
    elif layout == RUNNING:
        line += ", running text"
    elif layout is not None:
        line += f", layout {layout}"
    context = text.get("context")
    if isinstance(context, int) and not isinstance(context, bool):
        line += f", context {context}"
    return line


def split_line(split: Mapping[str, Any]) -> str:
    """``split: 260 documents for training, 28 held out (seed 3407)`` (running text: the first characters
    train, the last are held out)."""
    unit = str(split.get("unit", "?"))
    train, held = split.get("train"), split.get("held_out")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (train, held)):
        return "split: (not understood)"
    seed = split.get("seed")
    if split.get("layout") == RUNNING:
        how = f"the first {train:,} {unit} for training, the last {held:,} held out"
    else:
        how = f"{train:,} {unit} for training, {held:,} held out"
    return f"split: {how}" + (f" (seed {seed})" if isinstance(seed, int) and not isinstance(seed, bool) else "")
