"""systemd's notify protocol: one datagram to `$NOTIFY_SOCKET` per message.

READY=1 once the watches are armed, STATUS= lines with progress, WATCHDOG=1
pings, STOPPING=1 on the way out. Without `$NOTIFY_SOCKET` (not run by
systemd) every call does nothing. The protocol is small enough to speak here
rather than depend on a library for it.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address or None
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, **fields: object) -> None:
        """send(READY=1, STATUS="watching 3 roots"): one datagram of KEY=value lines."""
        if self._socket is None:
            return
        message = "\n".join(f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items())
        try:
            self._socket.sendto(message.encode(), self.address)
        except OSError as error:  # systemd went away: nothing to tell, nothing to stop for
            log.debug("sd_notify %r failed: %s", message, error)

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec), if systemd asks for them."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1e6 / 2

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
