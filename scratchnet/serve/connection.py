"""A connection of ``scratchnet serve``, read against a deadline: one for all the reads of a request,
where a socket timeout is one per read (a client sending a byte now and then would never meet it)."""

from __future__ import annotations

import io
import math
import socket
import time
from typing import Any


def address_of(client_address: Any) -> str:
    """``host:port`` of a client's address tuple."""
    if isinstance(client_address, tuple) and len(client_address) >= 2:
        return f"{client_address[0]}:{client_address[1]}"
    return str(client_address)


class RequestTimeout(TimeoutError):
    """The request did not arrive in full before its deadline."""


class DeadlineReader(io.RawIOBase):
    """A connection's incoming bytes, with one deadline for all the reads of a request: each read
    waits at most until the deadline, so a client that sends a byte now and then cannot hold the
    connection (and its thread) past it, as a timeout per read would let it. Between reads, the
    socket's timeout is ``write_timeout``, for the answer."""

    def __init__(self, connection: socket.socket, write_timeout: float) -> None:
        super().__init__()
        self.connection = connection
        self.write_timeout = write_timeout
        self.deadline = math.inf
        self.received = 0  # bytes received since start()

    def start(self, seconds: float) -> None:
        """The next request must arrive in full within ``seconds`` from now."""
        self.deadline = time.monotonic() + seconds
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestTimeout("the request's deadline has passed")
        self.connection.settimeout(left)
        try:
            count = self.connection.recv_into(buffer)
        except TimeoutError:
            raise RequestTimeout("the request's deadline has passed") from None
        finally:
            self.connection.settimeout(self.write_timeout)
        self.received += count
        return count
