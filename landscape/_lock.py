"""One writer per store: an advisory lock on a sidecar file ``<store>.lock``.

Where the platform has :mod:`fcntl` the lock is ``flock(LOCK_EX | LOCK_NB)`` on
the sidecar file: the kernel releases it when the holder closes it or dies
(``kill -9`` included), so it is never stale.  Elsewhere (Windows) the sidecar
file itself is the lock: created with ``O_EXCL``, removed on release, and taken
over when the process it names no longer exists.  Either way the file holds the
holder's process id, which the error a second writer gets names.

The lock is not taken on the SQLite file itself: SQLite's own POSIX locks on it
must not interact with ours (on NFS, Linux emulates ``flock`` with them).
"""

import os
import time
import weakref

try:
    import fcntl
except ImportError:                     # Windows
    fcntl = None

from .errors import StoreInUseError, StoreError

__all__ = ["WriteLock", "lock_path"]

_ATTEMPTS = 20          # takeovers of a file released or found stale while we looked
_PID_WAIT = 0.5         # seconds to wait for a new holder to write its pid
_held = weakref.WeakSet()


def lock_path(path):
    """The sidecar lock file of the store at `path`."""
    return os.fspath(path) + ".lock"


class WriteLock:
    """The write lock of one store, held from :meth:`acquire` to :meth:`release`.

    Parameters
    ----------
    path : str
        The store file.
    """

    def __init__(self, path, fd, exclusive_file):
        # use WriteLock.acquire
        self.path = path
        self.lock_path = lock_path(path)
        self._fd = fd
        self._exclusive_file = exclusive_file
        _held.add(self)

    @classmethod
    def acquire(cls, path):
        """Take the write lock of the store at `path`, or fail at once.

        Raises
        ------
        StoreInUseError
            Another Store object or process holds it; the message names the process.
        StoreError
            The lock file cannot be created (the folder is missing or read-only).
        """
        path = os.fspath(path)
        try:
            if fcntl is not None:
                return cls(path, _flock(path), exclusive_file=False)
            return cls(path, _create_exclusive(path), exclusive_file=True)
        except OSError as exc:
            raise StoreError(f"cannot lock store {path} for writing: cannot create "
                             f"{lock_path(path)} ({exc.strerror or exc}); check that the folder "
                             "exists and is writable", path) from None

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        """Remove the lock file and release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._exclusive_file:
                os.close(fd)
                _unlink(self.lock_path)
            else:
                if _is_same_file(fd, self.lock_path):   # unlink while holding: no one else can
                    _unlink(self.lock_path)
                os.close(fd)                             # releases the flock
        finally:
            _held.discard(self)

    def _forget(self):
        """In a forked child: close the inherited descriptor, leaving the parent's lock alone."""
        fd, self._fd = self._fd, None
        if fd is not None and not self._exclusive_file:
            os.close(fd)

    def __del__(self):
        # a Store dropped without close() must not keep its store locked until the process exits
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self):
        return f"WriteLock({self.path!r}, held={self.held})"


def _forget_inherited_locks():
    # a flock is shared by every descriptor of the open file, forked ones included: a
    # worker process that outlived its parent would keep the store locked
    for lock in list(_held):
        lock._forget()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_locks)


# ---- flock ------------------------------------------------------------------------------
def _flock(path):
    """An open descriptor of ``<path>.lock`` holding its flock, with our pid written in it."""
    name = lock_path(path)
    for _ in range(_ATTEMPTS):
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _wait_for_pid(lambda: os.pread(fd, 32, 0))
            os.close(fd)
            raise _in_use(path, pid, stale_hint=False) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_same_file(fd, name):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)       # its holder removed the file as we opened it: lock the new one
    raise StoreError(f"cannot lock store {path}: {name} keeps being replaced; other processes "
                     "are opening the store in a loop", path)


def _is_same_file(fd, name):
    try:
        a, b = os.fstat(fd), os.stat(name)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


# ---- O_EXCL lock file (no fcntl) ------------------------------------------------------------
def _create_exclusive(path):
    """Create ``<path>.lock`` exclusively with our pid in it; take over a stale one."""
    name = lock_path(path)
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid = _wait_for_pid(lambda: _read(name))
            if pid is not None and _is_alive(pid):
                raise _in_use(path, pid, stale_hint=True) from None
            # its process is gone (or never wrote its pid): stale.  Two processes taking
            # over one stale file at the same instant can both succeed; flock has no such race
            _unlink(name)
            continue
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd
    raise StoreError(f"cannot lock store {path}: {name} keeps reappearing; other processes "
                     "are opening the store in a loop", path)


def _read(name):
    try:
        with open(name, "rb") as f:
            return f.read(32)
    except FileNotFoundError:
        return b""


def _is_alive(pid):
    """Whether a process with this id exists (a recycled id reads as alive)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _is_alive_windows(pid)
    try:
        os.kill(pid, 0)                 # signal 0: existence check only (POSIX)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                     # exists, owned by another user
    return True


def _is_alive_windows(pid):
    # os.kill(pid, 0) would terminate the process on Windows
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5             # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259                        # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


# ---- shared ------------------------------------------------------------------------------
def _wait_for_pid(read):
    """The pid in a lock file; a new holder writes it just after locking, so wait a little."""
    deadline = time.monotonic() + _PID_WAIT
    while True:
        try:
            return int(read().decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)


def _in_use(path, pid, stale_hint):
    who = f"process {pid}" if pid is not None else "another process"
    message = (f"store {path} is in use by {who} (another scan is writing it); wait for it "
               "to finish or use another --store")
    if stale_hint:
        message += (f".  If {who} is not a landscape scan, the lock is stale: delete "
                    f"{lock_path(path)}")
    return StoreInUseError(message, path, pid=pid)


def _unlink(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
