"""``scratchnet serve MODEL.json``: a local web page where you draw a digit and watch the network think."""

from __future__ import annotations

import argparse

from scratchnet.cli.options import whole_number
from scratchnet.cli.output import warn
from scratchnet.core.errors import ConfigError

DESCRIPTION = (
    "Start a local web server with a page where you draw a digit (mouse or touch) and see, as you "
    "draw, the 28x28 image the network gets (cropped, scaled to fit 20x20 and centred as MNIST's "
    "digits are), the predicted class with a bar per class probability, and the hidden layers' "
    "activations and feature maps; click a class or a unit to see its weighted sum term by term, with "
    "the equation numbers of scratchnet explain. A second mode browses the test set. For a language "
    "model the page is another: type a text and see the next character's probabilities and every "
    "attention head's weights, click a cell for its terms, and generate a sample. With --train (and no "
    "model needed), the page is the Train mode: a network trains in the server on toy 2-D data, an MNIST "
    "subset or your CSV while you watch its curves, decision regions and filters, step it, scrub back "
    "and save it into --models DIR. It listens on 127.0.0.1 (this machine only) unless --host says "
    "otherwise; Ctrl-C stops it. The page and its JSON API are described in docs/serve.md."
)


def port(text: str) -> int:
    value = whole_number(text, 0, "a port number 0..65535")
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL.json",
        nargs="?",
        help="a model saved by scratchnet train (NAME.json + NAME.npz); leave it out with --train",
    )
    parser.add_argument(
        "--train",
        action="store_true",
        help="serve the Train mode: train a network in the page (no model needed; docs/serve.md)",
    )
    parser.add_argument(
        "--models",
        metavar="DIR",
        default="models",
        help="the folder the Train mode saves models into (default ./models; made when first needed)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=port, default=8000, help="the port to listen on (default 8000; 0: any free one)")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding mnist/ and fashion-mnist/, for the test-set mode "
        "(default: $SCRATCHNET_DATA_DIR, else the user cache, else download)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default web browser")


def run(args: argparse.Namespace) -> int:
    from scratchnet.cli.train import check_data_dir
    from scratchnet.io.model import load_model
    from scratchnet.serve.api import Session
    from scratchnet.serve.routes import Served
    from scratchnet.serve.server import serve
    from scratchnet.serve.text_api import TextSession, is_language_model
    from scratchnet.serve.train_api import TrainAPI

    check_data_dir(args.data_dir)
    if args.model is None and not args.train:
        raise ConfigError("serve needs a model (MODEL.json), or --train for the Train mode")
    session: Served | None = None
    if args.model is not None and is_language_model(load_model(args.model, backend="vectorized").network):
        session = TextSession(args.model)  # the page of its kind
    elif args.model is not None:
        session = Session(args.model, args.data_dir, log=lambda line: warn(f"scratchnet serve: note: {line}"))
    train = TrainAPI(args.models, args.data_dir, model_mode=session is not None)
    serve(
        session,
        args.host,
        args.port,
        train=train,
        open_browser=args.open,
        say=lambda line: print(line, flush=True),
        warn=warn,
    )
    return 0
