"""The web server of ``scratchnet serve``: the standard library's ThreadingHTTPServer, the page's
files and the JSON API of :mod:`scratchnet.serve.api`.

The standard library does all this page needs (a few small files and three JSON endpoints for one
person at a time), with no dependency to install, audit or keep up with.

What it serves, and nothing else:

* ``GET /`` and ``GET /static/NAME``: the page's files. They are read from the package's static
  folder when the server starts and served from memory by their exact names, so no request path,
  however it is written (``..``, ``%2e%2e``, backslashes, absolute paths), can reach any other file.
* the API routes of the model served (:mod:`scratchnet.serve.routes`): for an image model
  ``GET /api/model``, ``POST /api/predict``, ``POST /api/explain``, ``GET /api/test``; for a
  language model those of :mod:`scratchnet.serve.text_api`, whose page is ``text.html``. JSON
  (docs/serve.md). A POST must be ``application/json`` with a Content-Length of at most
  :data:`MAX_BODY` bytes (413 beyond it, before any of it is read).
* ``/api/train/...``: the Train mode (:mod:`scratchnet.serve.train_http`, docs/serve.md), alone
  with ``scratchnet serve --train`` (then ``/`` is its page) or beside a model.

Every error is a JSON object ``{"error": message, "status": code}`` with a 4xx status; an error in
scratchnet itself is a 500 with its type and message, never a traceback. Bound to a loopback address
(the default), it answers only requests whose Host header names that address or ``localhost`` (which
stops a web page from reaching it through DNS rebinding).

Slow and abandoned clients are bounded: each request must arrive in full within :data:`DEADLINE`
seconds (one deadline for all its reads, so a byte now and then does not keep it open; 408 after it),
and at most :data:`MAX_CONNECTIONS` connections are served at once (one thread each): the next ones
get a 503 at once. A client that leaves before its answer costs one line in the log.
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scratchnet.core.errors import ScratchnetError
from scratchnet.core.jsonread import read_json
from scratchnet.serve.api import RequestError
from scratchnet.serve.capped import SECURITY_HEADERS, CappedServer
from scratchnet.serve.connection import DeadlineReader, RequestTimeout, address_of
from scratchnet.serve.routes import Served, Stream, write_stream
from scratchnet.serve.train_api import TrainAPI
from scratchnet.serve.train_http import parse_query, send_download, stream_events, train_routes
from scratchnet.serve.train_uploads import Download

MAX_BODY = 1 << 20  # bytes of a request body: a 512x512 canvas as base64 is ~350 kB
TIMEOUT = 30.0  # seconds an answer may take to go out to a client that does not read it
DEADLINE = 30.0  # seconds for a whole request to arrive, counted from the end of the previous answer
MAX_CONNECTIONS = 32  # connections served at once, a thread each; more get a 503 (a browser opens about 6)
MAX_LENGTH_DIGITS = 15  # digits of a Content-Length header (the body limit has 7)
MAX_INT_DIGITS = 1000  # digits of an integer in a request body (int() of 4,301 or more raises ValueError)
STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
LOOPBACK_NAMES = ("localhost",)


def static_files(folder: Path = STATIC, home: str = "index.html") -> dict[str, tuple[bytes, str]]:
    """``{url path: (contents, content type)}`` of the page's files: ``/`` is ``home`` (``index.html``
    unless that file is missing), every other file is ``/static/NAME``. Only regular files of a known
    type directly inside ``folder``."""
    files: dict[str, tuple[bytes, str]] = {}
    root = folder.resolve()
    for path in sorted(root.iterdir()):
        kind = TYPES.get(path.suffix)
        if kind is None or path.is_symlink() or not path.is_file() or path.resolve().parent != root:
            continue
        files[f"/static/{path.name}"] = (path.read_bytes(), kind)
    if "/static/index.html" not in files:
        raise ScratchnetError(f"the page's files are missing: no index.html in {root}")
    files["/"] = files.get(f"/static/{home}", files["/static/index.html"])
    return files


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Server(CappedServer):
    """A ThreadingHTTPServer holding the session, the page's files and the Host names it answers,
    with a deadline for each request and a cap on the connections it serves at once."""

    daemon_threads = True  # a connection still open does not keep Ctrl-C from ending the process
    allow_reuse_address = True

    def __init__(
        self,
        session: Served | None,
        host: str,
        port: int,
        files: dict[str, tuple[bytes, str]],
        *,
        deadline: float = DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
        train: TrainAPI | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.train = train  # (before binding: a failed bind calls server_close)
        self.stopping = threading.Event()  # set when the server shuts down: event streams end
        super().__init__((host.strip("[]"), port), Handler)
        self.session = session
        if session is not None:  # the page of the model's kind
            files = {**files, "/": files[f"/static/{session.page}"]}
        self.files = files
        self.deadline = deadline
        self.max_connections = max_connections
        self.connections = 0  # connections being served, each by its thread
        self.busy = False  # whether connections are being refused (said once in the log each time)
        self.connections_lock = threading.Lock()
        self.port = int(self.server_address[1])
        self.host = host
        self.hosts: set[str] | None = None  # the Host headers answered; None: any (bound to a public address)
        if is_loopback(host):
            names = {host, "localhost", "127.0.0.1", "[::1]"} | ({f"[{host}]"} if ":" in host else set())
            self.hosts = {name.lower() for name in names} | {f"{name.lower()}:{self.port}" for name in names}
        self.log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        return f"http://{host}:{self.port}/"

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()

    def server_close(self) -> None:
        self.stopping.set()
        super().server_close()
        if self.train is not None:
            self.train.close()


class Handler(BaseHTTPRequestHandler):
    """One connection: the page's files by exact name, the JSON API, and JSON errors for everything else."""

    server: Server
    body_read = False  # whether the body of this request has been read (else the connection must close)
    protocol_version = "HTTP/1.1"  # keep-alive: the page's requests reuse one connection
    server_version = "scratchnet"
    timeout = TIMEOUT

    default_request_version = "HTTP/1.0"  # errors before the version is read still get a status line

    def setup(self) -> None:
        super().setup()
        # Each answer goes out in two writes (headers, then body): without this, Nagle's algorithm
        # holds the second until the client's delayed ACK, some 40 ms, on every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile.close()  # the socket's own file: reads go through the request's deadline instead
        self.reader = DeadlineReader(self.connection, TIMEOUT)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        """One request, read in full before the server's deadline (from the end of the previous
        answer, so an idle connection closes then too), answered; a client that leaves costs one line."""
        self.reader.start(self.server.deadline)
        self.command, self.requestline, self.request_version = "", "", self.default_request_version
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(414, "the request line is longer than 65,536 bytes")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # its error has been sent
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(501)
                return
            method()
            self.wfile.flush()
        except RequestTimeout:
            self.close_connection = True
            if self.reader.received:  # a request began: say why it ends (an idle connection just closes)
                message = f"the request did not arrive in full within {self.server.deadline:g} seconds"
                self.send_json({"error": message, "status": 408}, 408)
        except (ConnectionError, TimeoutError) as error:  # a client gone, or one that does not read its answer
            self.close_connection = True
            request = f" ({self.requestline[:100]})" if self.requestline else ""
            self.server.log(
                f"scratchnet serve: the client at {address_of(self.client_address)} left before its answer"
                f"{request}: {type(error).__name__}"
            )

    def parse_request(self) -> bool:
        """The base class's parsing, except that HTTP/0.9 (a request line of two words) gets a 505."""
        if len(self.raw_requestline.split()) == 2:
            self.request_version = self.default_request_version
            self.send_error(505, "HTTP/0.9 is not supported: send HTTP/1.0 or HTTP/1.1")
            return False
        return super().parse_request()

    def version_string(self) -> str:
        return self.server_version  # no Python version

    # ---- methods ----

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_HEAD(self) -> None:
        self.close_connection = True
        self.refuse()

    def do_PUT(self) -> None:
        self.refuse()

    def do_DELETE(self) -> None:
        self.refuse()

    def do_PATCH(self) -> None:
        self.refuse()

    def do_OPTIONS(self) -> None:
        self.refuse()

    def refuse(self) -> None:
        self.send_failure(f"method {self.command} is not allowed", 405)

    # ---- routing ----

    def dispatch(self, method: str) -> None:
        started = time.perf_counter()
        self.body_read = False
        try:
            self.check_host()
            url = urlsplit(self.path)
            path = url.path
            session = self.server.session  # the model's routes (none with --train alone), then the Train mode's
            routes = {} if session is None else session.routes(lambda: parse_query(url.query), self.read_json)
            routes = {**routes, **self.train_routes(url.query)}
            if path == "/api/train/events" and self.server.train is not None and method == "GET":
                stream_events(self, self.server.train, SECURITY_HEADERS)
                return
            if path in self.server.files:
                if method != "GET":
                    raise RequestError(f"{path} takes GET", 405)
                self.send_file(path)
                return
            if path not in routes:
                raise RequestError(f"no such page or API endpoint: {self.path[:200]}", 404)
            handler = routes[path].get(method)
            if handler is None:
                raise RequestError(f"{path} takes {', '.join(routes[path])}, not {method}", 405)
            answer = handler()
            if isinstance(answer, Stream):
                self.send_stream(answer)
                return
            if isinstance(answer, Download):
                send_download(self, answer, SECURITY_HEADERS)
                return
            answer["server_milliseconds"] = round(1000 * (time.perf_counter() - started), 2)
            self.send_json(answer)
        except (ConnectionError, TimeoutError):
            raise  # the client left or is too slow: nothing can be sent (handle_one_request says it in one line)
        except RequestError as error:
            self.send_failure(str(error), error.status)
        except ScratchnetError as error:
            self.send_failure(str(error), 400)
        except Exception as error:  # a bug: say what it was, in one line, and keep serving
            self.server.log(
                f"scratchnet serve: error in {self.command} {self.path[:200]}: {type(error).__name__}: {error}"
            )
            self.send_failure(f"internal error ({type(error).__name__}): {error}", 500)

    def send_failure(self, message: str, status: int) -> None:
        if self.command == "POST" and not self.body_read:
            self.close_connection = True  # its body is still unread: the connection cannot carry another request
        extra = {"Allow": "GET, POST"} if status == 405 else None
        self.send_json({"error": message, "status": status}, status, extra)

    def train_routes(self, query: str) -> dict[str, dict[str, Callable[[], Any]]]:
        train = self.server.train
        return {} if train is None else train_routes(train, self, query)

    def check_host(self) -> None:
        """Refuse a Host header the server was not bound as (DNS rebinding) when bound to loopback."""
        allowed = self.server.hosts
        host = (self.headers.get("Host") or "").strip().lower()
        if allowed is not None and host not in allowed:
            raise RequestError(f"this server answers requests for {self.server.url}, not for Host {host[:100]!r}", 403)

    def read_json(self) -> Any:
        """The request body, parsed: JSON, application/json, at most MAX_BODY bytes."""
        body = self.read_body(("application/json",))
        try:  # bounded by MAX_BODY, depth, integer digits; no NaN, Infinity or duplicate keys
            return read_json(body, "the request body", max_bytes=None, max_integer_digits=MAX_INT_DIGITS)
        except ValueError as error:  # JSONInputError, or anything else the parser refuses: never a 500
            raise RequestError(str(error)[:200]) from None

    def read_body(self, kinds: tuple[str, ...]) -> bytes:
        """The request body's bytes: of a Content-Type in ``kinds``, at most MAX_BODY bytes."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise RequestError("send the body with a Content-Length, not in chunks", 411)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self.close_connection = True
            raise RequestError("a POST needs a Content-Length header", 411)
        length_text = lengths[0].strip()
        if len(lengths) > 1 or not length_text.isascii() or not length_text.isdigit():
            self.close_connection = True
            raise RequestError("the Content-Length header must be one number of bytes")
        if len(length_text) > MAX_LENGTH_DIGITS:  # before int(): a number of 5,000 digits is not a size
            self.close_connection = True
            raise RequestError(f"the Content-Length header has {len(length_text)} digits; a size has at most 15")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True  # its body is left unread
            raise RequestError(f"the request body is {length} bytes; the limit is {MAX_BODY}", 413)
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = self.rfile.read(length)
        self.body_read = True
        if len(body) != length:
            self.close_connection = True
            raise RequestError("the request body is shorter than its Content-Length")
        if kind not in kinds:
            raise RequestError(f"send the body as {' or '.join(kinds)}, not {kind or 'without a Content-Type'}", 415)
        return body

    # ---- answers ----

    def send_file(self, path: str) -> None:
        contents, kind = self.server.files[path]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(contents)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(contents)

    def send_stream(self, stream: Stream) -> None:
        """A 200 whose body is ``stream``'s events as they come (chunked; HTTP/1.0: until the close)."""
        chunked = self.request_version != "HTTP/1.0"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")  # sets close_connection: the body ends with the connection
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        write_stream(self.wfile, stream, chunked, self.server.log)

    def send_json(self, answer: dict[str, Any], status: int = 200, extra: dict[str, str] | None = None) -> None:
        try:
            body = json.dumps(answer, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except ValueError:  # inf or NaN: JSON has no such numbers (the model's weights are too large)
            status, extra = 422, None
            message = "the answer holds numbers that are not finite: the model's weights are too large for this input"
            body = json.dumps({"error": message, "status": status}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")  # sets close_connection: the body ends with the connection
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's errors (a malformed request line, headers too long, an unknown method) as JSON too."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = "error"
        if code == 501:  # a method the server has no handler for at all
            code, text = 405, f"method {self.command} is not allowed"
        self.send_json({"error": text[:300], "status": code}, code)

    def log_message(self, format: str, *args: Any) -> None:
        """No line per request: the page sends one every time the drawing changes."""


def make_server(
    session: Served | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    deadline: float = DEADLINE,
    max_connections: int = MAX_CONNECTIONS,
    train: TrainAPI | None = None,
) -> Server:
    """The server, bound and listening (port 0: a free one; ``server.port`` says which). Each request
    must arrive within ``deadline`` seconds; at most ``max_connections`` are served at once. With no
    ``session``, it serves the Train mode (``train``) alone, and ``/`` is its page."""
    if session is None and train is None:
        raise ScratchnetError("a server needs a model to serve, or the Train mode")
    files = static_files(home="index.html" if session is not None else "train.html")
    try:
        return Server(session, host, port, files, deadline=deadline, max_connections=max_connections, train=train)
    except OSError as error:
        reason = error.strerror or str(error)
        hint = " (choose another with --port)" if error.errno in (98, 48, 10048) else ""
        raise ScratchnetError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def serve(
    session: Served | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    train: TrainAPI | None = None,
    open_browser: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> None:
    """Serve until interrupted: say where, warn when reachable from other machines, open a browser if asked.

    Ctrl-C raises KeyboardInterrupt out of here (the command line turns it into its usual exit status
    130), after the listening socket is closed."""
    server = make_server(session, host, port, train=train)
    server.log = warn
    try:
        if not is_loopback(host):
            warn(
                f"scratchnet serve: warning: listening on {host}, not on 127.0.0.1: anyone who can reach this "
                f"machine on port {server.port} can use the page and its API (no password, no HTTPS)"
            )
        what = session.path if session is not None else "the Train mode"
        say(f"Serving {what} at {server.url} (Ctrl-C stops)")
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    finally:
        server.server_close()
