"""``scratchnet explain MODEL --text TEXT``: a language model's next characters and attention, with the
loops backend (scratchnet.teaching.explain_tokens)."""

from __future__ import annotations

import argparse
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.text import printable

IMAGE_FLAGS = ("index", "image", "label", "invert", "preprocess", "dataset", "data", "neuron", "channel", "row", "col")


def run_text(model: Any, args: argparse.Namespace) -> int:
    """Explain ``args.text`` with the loaded ``model``; one-line errors for an image model, a language
    model without --text and the image flags."""
    from scratchnet.teaching.explain_tokens import explain_tokens, vocabulary_of
    from scratchnet.teaching.sequence_text import format_token_explanation

    name = printable(args.model)
    if model.network.vocabulary is None:
        raise ConfigError(
            f"--text goes with a language model; {name} reads images or features (give --index or --image)"
        )
    if args.text is None:
        raise ConfigError(f'{name} is a language model: give --text TEXT (explain {name} --text "emm")')
    given = [flag for flag in IMAGE_FLAGS if getattr(args, flag, None) not in (None, False)]
    if args.backward or args.weight is not None:
        given.insert(0, "backward")
    if given:
        raise ConfigError(
            f"--{given[0]} goes with an image model; with --text choose with --layer, --head, --position and --top"
        )
    vocabulary = vocabulary_of(model.metadata, name)
    explanation = explain_tokens(
        model.network,
        args.text,
        vocabulary,
        layer=args.layer,
        head=args.head,
        position=args.position,
        top=args.top,
        source=f"model {name} (loops backend)",
    )
    print(format_token_explanation(explanation))
    return 0
