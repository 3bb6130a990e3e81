"""``scratchnet lr-find``: sweep the learning rate exponentially over a few hundred steps of the run
``scratchnet train`` would make with the same flags, print the loss at each rate, and suggest one."""

from __future__ import annotations

import argparse
from typing import Any

from scratchnet.cli.options import positive_float, positive_int
from scratchnet.cli.train import FLAG_GROUPS, check_data_dir, config_from_args, log
from scratchnet.cli.train_settings import CONFIG_FLAGS, recipe_defaults
from scratchnet.core.errors import ConfigError
from scratchnet.training.lr_find import Sweep, check_sweep, find_lr

DEFAULT_STEPS, DEFAULT_START, DEFAULT_END = 200, 1e-6, 1.0
TABLE_ROWS = 25  # rows of the printed table, evenly spaced over the steps (and the last one)

# train's flags that lr-find does not take: the rate and its schedule (the sweep sets the rate), the
# length of the run (--steps), and what a run writes or checks. Of train's first group (the recipe and
# the files) it takes the recipe and the data folder only.
SWEPT = {
    "--lr",
    "--lr-schedule",
    "--lr-min",
    "--lr-step",
    "--lr-gamma",
    "--lr-time-decay",
    "--lr-decay",
    "--lr-warmup",
    "--epochs",
}
FROM_FILES_GROUP = {"--recipe", "--data-dir"}

DESCRIPTION = (
    "Find a learning rate: from one initialisation, train --steps steps at rates growing exponentially from "
    "--start to --end, on the data, network, optimizer and batches that scratchnet train would use with the same "
    "flags; stop when the loss diverges (the smoothed loss above 4x its lowest). Prints the rate and the smoothed "
    "loss, draws the loss against the rate (--out FILE.png), and prints 'suggested lr: <value>' with its rule: a "
    "tenth of the rate at the smoothed loss's minimum. Writes no model; the same seed gives the same suggestion."
)


def train_flags() -> list[tuple[str, list[tuple[tuple[str, ...], dict[str, Any]]]]]:
    """scratchnet train's flag groups as lr-find takes them."""
    groups = []
    for title, flags in FLAG_GROUPS.items():
        names = {flag for names, _ in flags for flag in names}
        if "--diagnostics" in names:
            continue
        files = "--recipe" in names
        taken = [
            (flag_names, options)
            for flag_names, options in flags
            if flag_names[0] not in SWEPT and (not files or flag_names[0] in FROM_FILES_GROUP)
        ]
        groups.append(("the recipe and the data folder" if files else title, taken))
    return groups


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sweep = parser.add_argument_group("the sweep")
    sweep.add_argument(
        "--steps", type=positive_int, default=DEFAULT_STEPS, help=f"steps of the sweep (default {DEFAULT_STEPS})"
    )
    sweep.add_argument(
        "--start", type=positive_float, default=DEFAULT_START, help=f"the first rate (default {DEFAULT_START:g})"
    )
    sweep.add_argument(
        "--end", type=positive_float, default=DEFAULT_END, help=f"the last rate (default {DEFAULT_END:g})"
    )
    sweep.add_argument("--out", metavar="FILE.png", help="draw the loss against the rate into this PNG")
    skipped: dict[str, Any] = {}
    for flags in FLAG_GROUPS.values():
        for names, options in flags:
            skipped[options.get("dest", names[0].lstrip("-").replace("-", "_"))] = None
    for title, flags in train_flags():
        group = parser.add_argument_group(title)
        for names, options in flags:
            group.add_argument(*names, **options)
    taken = {action.dest for action in parser._actions}
    parser.set_defaults(**{dest: value for dest, value in skipped.items() if dest not in taken})
    for action in parser._actions:  # as train's --help: what each recipe sets a setting to
        if action.dest in CONFIG_FLAGS and action.help != argparse.SUPPRESS:
            action.help = f"{action.help or action.dest.replace('_', ' ')} [{recipe_defaults(action.dest)}]"


def run(args: argparse.Namespace) -> int:
    check_sweep(args.start, args.end, args.steps)
    if args.out is not None:
        from scratchnet.io.model import check_replaceable
        from scratchnet.teaching.plots import require_matplotlib

        require_matplotlib()  # before the sweep
        if not str(args.out).lower().endswith(".png"):
            raise ConfigError(f"--out {args.out}: the plot is a PNG file; give a name ending in .png")
        check_replaceable(args.out)
    check_data_dir(args.data_dir)
    config = config_from_args(args)
    log(f"sweeping the learning rate from {args.start:g} to {args.end:g} over {args.steps} steps")
    sweep = find_lr(config, args.start, args.end, args.steps, data_dir=args.data_dir, log=log)
    for line in table(sweep):
        log(line)
    log(sweep.stopped)
    suggested, rule = sweep.suggestion()
    if args.out is not None:
        from scratchnet.teaching.plots import png_size
        from scratchnet.teaching.training_plots import plot_lr_find

        title = f"learning-rate finder: {config.data_name}, {config.optimizer}, seed {config.seed}"
        plot_lr_find(
            sweep.rates,
            sweep.losses,
            sweep.smoothed,
            suggested,
            "a tenth of the rate at the minimum",
            args.out,
            title=title,
        )
        width, height = png_size(args.out)
        log(f"wrote {args.out} ({width}x{height} px)")
    log(f"suggested lr: {suggested:.3g} ({rule})")
    return 0


def table(sweep: Sweep) -> list[str]:
    """About TABLE_ROWS rows of (step, rate, loss, smoothed loss), evenly spaced, and the last step."""
    taken = len(sweep.rates)
    every = max(1, -(-taken // TABLE_ROWS))
    rows = [f"{'step':>5}  {'lr':>9}  {'loss':>9}  {'smoothed':>9}"]
    for k in [*range(0, taken, every), *([taken - 1] if (taken - 1) % every else [])]:
        rows.append(f"{k + 1:>5}  {sweep.rates[k]:>9.3g}  {sweep.losses[k]:>9.4g}  {sweep.smoothed[k]:>9.4g}")
    return rows
