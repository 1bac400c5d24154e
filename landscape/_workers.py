"""Local worker processes that end when the process that started them dies.

After ``kill -9`` of ``landscape scan --workers N`` nothing tells a pool's workers that
their parent is gone: each would finish the chunk it holds (seconds to minutes) for
nobody.  :func:`exit_with_parent` is the pool's initializer.  On Linux the kernel kills
a worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``).  Everywhere, and
where the worker's parent is not the scanning process (a ``forkserver``), a daemon
thread in the worker also checks every half second that its parent is still the process
that started it (``os.getppid()`` changes when the parent dies and the worker is
re-parented) and ends the worker with ``os._exit`` if not.
"""

import concurrent.futures
import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["process_pool", "exit_with_parent"]

_PR_SET_PDEATHSIG = 1          # from <linux/prctl.h>
_POLL_SECONDS = 0.5


def process_pool(n_workers):
    """A ProcessPoolExecutor of `n_workers` processes that die with this one."""
    return concurrent.futures.ProcessPoolExecutor(
        n_workers, initializer=exit_with_parent, initargs=(os.getpid(),))


def exit_with_parent(parent_pid, *, poll=_POLL_SECONDS, use_prctl=True):
    """Worker initializer: end this process as soon as its parent process dies.

    Parameters
    ----------
    parent_pid : int
        The process id of the process that made the pool.
    poll : float
        Seconds between the watchdog thread's checks of ``os.getppid()``.
    use_prctl : bool
        Ask Linux to send SIGKILL when the parent dies (when the parent is
        `parent_pid` itself); the watchdog runs either way.
    """
    parent = os.getppid()
    if use_prctl and parent == parent_pid and sys.platform.startswith("linux"):
        _kill_on_parent_death()
    if os.getppid() != parent:          # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, poll), name="landscape-exit-with-parent",
                     daemon=True).start()


def _kill_on_parent_death():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):   # no prctl: the watchdog thread remains
        pass


def _watch(parent, poll):
    while os.getppid() == parent:
        time.sleep(poll)
    os._exit(1)
