"""Loopback ports: pick a free one, wait for one to open or to be released.

Servers bind to 127.0.0.1 only, so a homelab stack and a test session never expose
anything beyond the machine, and several sessions can run side by side.
"""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS just reported free on `host`.

    There is an unavoidable window between closing the probe socket and the server
    binding it; callers that did not pin a port retry with a new one on a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_closed(port: int, host: str = LOOPBACK, timeout: float = 10.0) -> bool:
    """Wait until nothing listens on host:port; True if it got there within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(port, host, timeout=0.2):
            return True
        time.sleep(0.05)
    return not port_open(port, host, timeout=0.2)
