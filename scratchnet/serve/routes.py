"""What the server of ``scratchnet serve`` asks of the model it serves, and the streamed answers.

A served model (:class:`Served`) names its page (``index.html`` for an image model, ``text.html``
for a language model) and its API routes; a route returns a JSON object, or a :class:`Stream` of
them that the server sends as they come, one JSON object a line (``application/x-ndjson``), in the
chunks of HTTP/1.1's chunked transfer coding (``generate`` on the page of a language model).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from scratchnet.core.errors import ScratchnetError

Query = Callable[[], dict[str, list[str]]]  # the parsed query string, read when a route asks for it
Body = Callable[[], Any]  # the parsed JSON body, read when a route asks for it
Routes = dict[str, dict[str, Callable[[], Any]]]  # {path: {method: handler}}


class Served(Protocol):
    """A model as the server serves it: its file's ``path``, its ``page`` and its ``routes``."""

    path: str
    page: str

    def routes(self, query: Query, body: Body) -> Routes: ...


@dataclass
class Stream:
    """An answer sent a piece at a time: ``events`` yields JSON objects, each sent as soon as it comes.
    An error while it runs ends it with one last object ``{"error": message}``, since its status
    (200) is already sent."""

    events: Iterator[dict[str, Any]]


def write_stream(out: IO[bytes] | io.BufferedIOBase, stream: Stream, chunked: bool, log: Callable[[str], None]) -> None:
    """Write ``stream``'s events to ``out``, a line of JSON each, flushed one by one: in chunks
    (HTTP/1.1), or plain until the connection closes (HTTP/1.0). An error raised by the events ends
    the stream with its one-line message (a fault in scratchnet itself is also ``log``ged, in one line)."""

    def send(data: bytes) -> None:
        out.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        out.flush()

    try:
        for event in stream.events:
            send(json.dumps(event, allow_nan=False, separators=(",", ":")).encode("utf-8") + b"\n")
    except (ConnectionError, TimeoutError):
        raise  # the client left: nothing more can be sent
    except ScratchnetError as error:
        send(json.dumps({"error": str(error)[:300]}).encode("utf-8") + b"\n")
    except Exception as error:  # a bug: one line, never a traceback
        message = f"internal error ({type(error).__name__}): {error}"[:300]
        log(f"scratchnet serve: while streaming: {message}")
        send(json.dumps({"error": message}).encode("utf-8") + b"\n")
    if chunked:
        out.write(b"0\r\n\r\n")
        out.flush()
