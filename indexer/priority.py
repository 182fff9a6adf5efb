"""Out of playback's way: the service runs at nice 10 and the lowest best-effort I/O
priority, and all it starts inherits both. A service manager that set them already (the
unit's Nice= and IOScheduling*) is left alone, since its system call filter refuses the
change; a priority that cannot be lowered is said once, in the log."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("indexer")

NICE = 10
IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, LOWEST_LEVEL = 2, 3, 7
BEST_EFFORT_LOWEST = (IOPRIO_CLASS_BE << 13) | LOWEST_LEVEL
IOPRIO_WHO_PROCESS = 1

# ioprio_set by machine (ioprio_get is the next number on each); Python's os has neither
IOPRIO_SET = {"x86_64": 251, "i386": 289, "i686": 289, "armv6l": 314, "armv7l": 314,
              "armv8l": 314, "aarch64": 30, "riscv64": 30, "loongarch64": 30,
              "ppc64le": 273, "ppc64": 273, "s390x": 282}


def lower_priority() -> None:
    _lower_cpu_priority()
    _lower_io_priority()


def _lower_cpu_priority() -> None:
    if os.getpriority(os.PRIO_PROCESS, 0) >= NICE:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError as error:
        log.info("the CPU priority stays as it is: %s", error.strerror)


def io_priority() -> tuple[int, int] | None:
    """This process's I/O scheduling (class, level), or None where it cannot be read."""
    number = IOPRIO_SET.get(os.uname().machine)
    if number is None:
        return None
    value = ctypes.CDLL(None, use_errno=True).syscall(number + 1, IOPRIO_WHO_PROCESS, 0)
    return None if value < 0 else (value >> 13, value & 0x1FFF)


def _lower_io_priority() -> None:
    number = IOPRIO_SET.get(os.uname().machine)
    if number is None:
        log.info("the I/O priority stays as it is: ioprio_set is not known on %s",
                 os.uname().machine)
        return
    now = io_priority()
    if now is not None and (now[0] == IOPRIO_CLASS_IDLE or now == (IOPRIO_CLASS_BE, LOWEST_LEVEL)):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, IOPRIO_WHO_PROCESS, 0, BEST_EFFORT_LOWEST) < 0:
        log.info("the I/O priority stays as it is: %s", os.strerror(ctypes.get_errno()))
