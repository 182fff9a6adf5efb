"""Whether any process holds a file open for writing, by the kernel's word.

The kernel grants a read lease on a file (`fcntl(F_SETLEASE, F_RDLCK)`, fcntl(2))
only while no process, ours included, has it open for writing: taken and given
back at once, a granted lease says that the file's writers have all closed it, as
`IN_CLOSE_WRITE` does for a file whose close we heard. survey.complete_since asks
it of the files a copy wrote before their folder's watch began, which have no
events of their own (see README, "Running it as a service").

The kernel grants it to the file's owner, or to a process with CAP_LEASE in the
first user namespace (the shipped unit has neither: README, "Who the kernel
answers"); to anyone else, and on file systems without leases, there is no answer,
and the files wait as before. While a lease is held, for the instant between the
two calls, a writer opening the file waits for it to be given back (or, opening
with O_NONBLOCK, is told EWOULDBLOCK: the one effect on another program), and the
kernel sends the holder SIGIO, which ends a process by default: leases are asked
only once SIGIO is ignored (`ignore_breaks`, by `indexer run` at start).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal


def ignore_breaks() -> None:
    """Let a lease broken while held do nothing (call from the main thread)."""
    signal.signal(signal.SIGIO, signal.SIG_IGN)


def usable() -> bool:
    """Whether leases may be asked here: SIGIO is not left to end the process."""
    return signal.getsignal(signal.SIGIO) not in (signal.SIG_DFL, None)


def unwritten(path: str) -> bool | None:
    """True if no process holds `path` open for writing, False if one does; None if the
    kernel will not say (not usable here, no lease for this user or file system, the
    file gone or not a regular file)."""
    if not usable():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        return False if error.errno == errno.EAGAIN else None
    else:
        return True
    finally:
        os.close(fd)  # (the lease ends with the last descriptor)
