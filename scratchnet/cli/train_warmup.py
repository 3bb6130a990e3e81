"""A recipe's warmup in proportion to a shorter image run than the recipe's.

The ``cnn`` recipe warms up over its first epoch of 20 on MNIST's 60,000 images (469 steps of 128). A trial
run of it with ``--epochs 1`` or ``--limit N`` has fewer steps than that, and a warmup must end before the
run does: so, as a language model's recipe does with ``--steps`` (scratchnet/cli/train_text.py), the warmup
shrinks with the run, to the same share of it. A warmup given with ``--lr-warmup`` is the user's, and stays.
"""

from __future__ import annotations

import argparse
from typing import Any

from scratchnet.data import DATASETS


def shortened_image_warmup(settings: dict[str, Any], args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """``{"lr_warmup": steps}`` for a run shorter than its recipe's (fewer epochs, or ``--limit`` fewer
    images of a built-in dataset), the recipe's warmup times the share of the recipe's run that remains;
    ``{}`` when the warmup is the user's, or there is none, or the run is not shorter."""
    warmup, planned_epochs = settings.get("lr_warmup"), settings.get("epochs")
    if not warmup or args.lr_warmup is not None or args.data is not None or not planned_epochs:
        return {}
    share = min(args.epochs or planned_epochs, planned_epochs) / planned_epochs
    spec = DATASETS.get(dataset)
    if args.limit is not None and spec is not None:
        share *= min(args.limit, spec.train_images.shape[0]) / spec.train_images.shape[0]
    if share >= 1.0:
        return {}
    return {"lr_warmup": int(warmup * share) or None}
