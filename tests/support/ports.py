"""Free TCP ports for test clusters, shared by the Python test suites.

A port the OS picked for ``bind(0)`` comes from the kernel's ephemeral range, and so does the local
port of every outgoing connection: between releasing it and the node binding it, any connection on
the machine may take it, and a second ``bind(0)`` may hand out the same port again (a CI run failed
with two nodes given one port). Ports are therefore chosen below the ephemeral range, checked free,
and never handed out twice in this process.
"""

import os
import socket

_FLOOR = 20_000
_given: set = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 a moment ago, not handed out before in this process."""
    span = _ephemeral_low() - _FLOOR
    start = (os.getpid() * 2_654_435_761) % max(span, 1)
    for k in range(4 * min(span, 4096)):
        port = _FLOOR + (start + k * 7_919) % span
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
