"""``scratchnet evaluate MODEL`` on a language model: the loss on its recorded held-out text or on --data FILE.

The recorded text is read again only while its size and SHA-256 are the model's (data/text.py's
``load_recorded_text``); a file given with ``--data`` is held out whole, read in the model's layout, and
every character must be in the model's vocabulary. Running text is scored in consecutive non-overlapping
blocks of the context, documents every character and the end token (data/text_batches.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from scratchnet.core import notation
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.text import printable
from scratchnet.data.text import DOCUMENTS, RUNNING, load_recorded_text, load_text
from scratchnet.io.model import LoadedModel
from scratchnet.training.next_token import describe_loss, text_loss
from scratchnet.training.text_train import recorded_vocabulary


def is_language_model(metadata: Mapping[str, Any]) -> bool:
    return isinstance(metadata.get("vocabulary"), Mapping)


def run_text(args: argparse.Namespace, loaded: LoadedModel) -> int:
    if args.dataset is not None or getattr(args, "label_column", None) is not None:
        raise ConfigError("a language model is evaluated on text: give a text file with --data FILE.txt")
    metadata = loaded.metadata
    vocabulary = recorded_vocabulary(metadata, args.model)
    context = int(plan(loaded.architecture).input_shape[0])
    if args.data is not None:
        layout = DOCUMENTS if vocabulary.boundary else RUNNING
        data = load_text(args.data, layout=layout, vocabulary=vocabulary, backend=args.backend)
        where = f"{args.data} (all of it)"
    else:
        source = metadata.get("source")
        data = load_recorded_text(source if isinstance(source, Mapping) else {}, vocabulary, args.backend)
        where = f"{data.path} (held out: {data.split.held_out:,} {data.split.unit})"
    started = time.perf_counter()
    nats, count = text_loss(loaded.network, data, context)
    seconds = time.perf_counter() - started
    print(printable(f"{args.model}: {notation.outline(plan(loaded.architecture).description)} on {where}, "
                    f"{args.backend} backend"))  # fmt: skip
    if count == 0:
        print("no positions to score")
        return 0
    how = "every character and each end token" if data.layout == DOCUMENTS else f"blocks of {context}"
    print(f"loss {describe_loss(nats)} over {count:,} positions ({how}; {seconds:.1f} s)")
    return 0
