"""The cap on the connections ``scratchnet serve`` serves at once, a thread each: beyond it, a 503
in one non-blocking write from the accepting thread, which never waits for a client."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from scratchnet.serve.connection import address_of

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CappedServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that serves at most ``max_connections`` connections at once (set by the
    subclass before it serves), logging through ``log``."""

    max_connections: int
    connections = 0  # connections being served, each by its thread
    busy = False  # whether connections are being refused (said once in the log each time)
    connections_lock: threading.Lock
    log: Callable[[str], None]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, or refuse it with a 503 when the cap is reached."""
        with self.connections_lock:
            full = self.connections >= self.max_connections
            if not full:
                self.connections += 1
            said, self.busy = self.busy, full
        if full:
            if not said:
                self.log(
                    f"scratchnet serve: {self.max_connections} connections are open, the most it serves at once: "
                    "new ones get 503 until one closes"
                )
            self.refuse_busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.release()

    def release(self) -> None:
        with self.connections_lock:
            self.connections -= 1

    def refuse_busy(self, request: socket.socket) -> None:
        """A 503 in one non-blocking write, then close: this thread accepts the connections, so it never waits."""
        limit = self.max_connections
        body = json.dumps(
            {"error": f"the server is busy: it serves {limit} connections at once; try again", "status": 503}
        ).encode()
        head = [
            "HTTP/1.1 503 Service Unavailable",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Retry-After: 1",
            "Connection: close",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
        ]
        try:
            request.setblocking(False)
            request.send("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
            request.recv(65536)  # what the client sent so far: closing with it unread would reset the connection
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Anything a connection's thread did not handle itself: one line, not the base class's traceback."""
        error = sys.exc_info()[1]
        self.log(f"scratchnet serve: connection from {address_of(client_address)}: {type(error).__name__}: {error}")
