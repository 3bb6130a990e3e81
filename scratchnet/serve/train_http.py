"""The Train mode's side of the server's request handler (:mod:`scratchnet.serve.server`): its
routes, its event stream and its file download. ``handler`` is the server's request handler (a
BaseHTTPRequestHandler with ``read_json``, ``read_body`` and the server's ``stopping`` event)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from scratchnet.serve.api import RequestError
from scratchnet.serve.train_api import TrainAPI
from scratchnet.serve.train_uploads import Download

UPLOAD_TYPES = ("text/csv", "application/octet-stream")  # what POST /api/train/upload takes


def parse_query(query: str) -> dict[str, list[str]]:
    """The query string's parameters (``?random`` counts, with an empty value)."""
    try:
        return parse_qs(query, keep_blank_values=True, max_num_fields=10)
    except ValueError as error:
        raise RequestError(f"the query string is not understood: {error}") from None


def train_routes(train: TrainAPI, handler: Any, query: str) -> dict[str, dict[str, Callable[[], Any]]]:
    """The Train mode's endpoints (docs/serve.md, "Train mode API"): path -> method -> answer."""
    return {
        "/api/train/info": {"GET": train.info},
        "/api/train/state": {"GET": train.state},
        "/api/train/events": {"GET": lambda: {}},  # answered by stream_events
        "/api/train/start": {"POST": lambda: train.start(handler.read_json())},
        "/api/train/control": {"POST": lambda: train.control(handler.read_json())},
        "/api/train/snapshots": {"GET": train.snapshots},
        "/api/train/snapshot": {"GET": lambda: train.snapshot(parse_query(query))},
        "/api/train/fork": {"POST": lambda: train.fork(handler.read_json())},
        "/api/train/inspect": {"POST": lambda: train.inspect(handler.read_json())},
        "/api/train/save": {"POST": lambda: train.save(handler.read_json())},
        "/api/train/download": {"GET": train.download},
        "/api/train/upload": {"POST": lambda: train.upload(handler.read_body(UPLOAD_TYPES))},
    }


def stream_events(handler: Any, train: TrainAPI, headers: Mapping[str, str]) -> None:
    """``GET /api/train/events``: server-sent events until the client leaves or the server stops."""
    train.open_stream()
    try:
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"retry: 1000\n\n")
        handler.wfile.flush()
        for chunk in train.events(lambda: not handler.server.stopping.is_set()):
            handler.wfile.write(chunk.encode("utf-8"))
            handler.wfile.flush()
    except (ConnectionError, TimeoutError):
        pass  # the page went away: the usual end of a stream
    finally:
        train.close_stream()


def send_download(handler: Any, answer: Download, headers: Mapping[str, str]) -> None:
    """A file to save, not to show: its bytes with a Content-Disposition naming it."""
    handler.send_response(200)
    handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.data)))
    handler.send_header("Content-Disposition", f'attachment; filename="{answer.filename}"')
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(answer.data)
