"""Plug-ins that kill or freeze their process from run() and search()."""

import ctypes
import os

from sp_hostile import Hostile, spec


class Segfault(Hostile):
    """Dereferences NULL: SIGSEGV."""

    spec = spec("hostile-segfault")

    def attack(self, context):
        ctypes.string_at(0)


class GilHang(Hostile):
    """libc sleep() called through PyDLL, which keeps the GIL: every thread of the process
    freezes, so no thread-based timeout can ever fire."""

    spec = spec("hostile-gil-hang")

    def attack(self, context):
        ctypes.PyDLL(None).sleep(3600)


class Exit(Hostile):
    """os._exit(3): the process vanishes without unwinding."""

    spec = spec("hostile-exit")

    def attack(self, context):
        os._exit(3)


class SysExit(Hostile):
    """sys.exit() from run(): must not end the app."""

    spec = spec("hostile-sysexit")

    def attack(self, context):
        raise SystemExit(4)


class Stubborn(Hostile):
    """Ignores SIGTERM, then answers properly: its idle process must not keep the app from
    exiting."""

    spec = spec("hostile-stubborn")

    def attack(self, context):
        import signal

        from sp_hostile import safe_looking_result

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return safe_looking_result()
