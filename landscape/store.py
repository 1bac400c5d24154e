"""The SQLite run store of a scan: resumable, versioned, and free of pickles.

One file holds one scan.  Its tables:

``meta``
    ``schema_version``, the scan's ``settings`` (JSON) and, once the scan is
    complete, ``finalized``.
``starts``
    One row per finished start: the end point, its loss, gradient norm,
    status and classification.  The rows of one chunk are written in one
    transaction, so a scan killed at any moment (``kill -9`` included) leaves
    whole chunks or nothing of them, and resumes with the starts not yet here.
``visits``
    Saddles a start's descent passed close to, polished and classified.
``points``, ``assignments``, ``edges``
    The distinct critical points, the point each start ended at, and the
    saddle -> minimum edges of the basin graph, written when the scan completes.
``arrays``
    The arrays inside classifications (eigenvalues, witnesses).

Arrays are stored as raw bytes with explicit ``dtype`` and ``shape`` columns
(float64 round-trips exactly) and a ``checksum`` column beside each: the
SHA-256 of dtype, shape and bytes, checked on every load, so a damaged array
(one flipped bit) is an error naming its table and row, never a wrong point.
Classifications are stored as JSON.  Nothing is ever pickled or unpickled,
and every query is parameterised.

One writer at a time: :meth:`Store.create` and ``Store.open(..., write=True)``
take an advisory lock on ``<store>.lock`` (see :mod:`landscape._lock`) that a
second writer, in this process or another, finds held; readers take no lock.
"""

import dataclasses
import hashlib
import json
import math
import os
import sqlite3

import numpy as np

from ._lock import WriteLock
from ._results import Result
from .classify import Classification
from .critical._result import Status
from .errors import StoreError

__all__ = ["Store", "Chunk", "SCHEMA_VERSION"]

# 2: a checksum beside every stored array; points carry the dimension and members of
# the critical manifold they stand for
SCHEMA_VERSION = 2
_APPLICATION_ID = 0x4C4E4453          # "LNDS": marks the file as a landscape store
_SQLITE_HEADER = b"SQLite format 3\x00"
_DTYPES = {"<f8": np.float64, "<i8": np.int64, "|b1": np.bool_}

_SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE starts (
    start INTEGER PRIMARY KEY,
    x BLOB NOT NULL, x_dtype TEXT NOT NULL, x_shape TEXT NOT NULL, x_checksum TEXT NOT NULL,
    loss REAL, grad_norm REAL, min_eigenvalue REAL,
    status INTEGER NOT NULL,
    message TEXT NOT NULL,
    descent_iterations INTEGER NOT NULL,
    polish_iterations INTEGER NOT NULL,
    pushes INTEGER NOT NULL,
    classification TEXT NOT NULL
);
CREATE TABLE visits (
    start INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    x BLOB NOT NULL, x_dtype TEXT NOT NULL, x_shape TEXT NOT NULL, x_checksum TEXT NOT NULL,
    classification TEXT NOT NULL,
    PRIMARY KEY (start, seq)
);
CREATE TABLE points (
    id INTEGER PRIMARY KEY,
    x BLOB NOT NULL, x_dtype TEXT NOT NULL, x_shape TEXT NOT NULL, x_checksum TEXT NOT NULL,
    kind TEXT NOT NULL,
    loss REAL,
    basin_count INTEGER NOT NULL,
    first_start INTEGER NOT NULL,
    found_by TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    n_members INTEGER NOT NULL,
    classification TEXT NOT NULL
);
CREATE TABLE assignments (
    start INTEGER PRIMARY KEY,
    point INTEGER NOT NULL
);
CREATE TABLE edges (
    source INTEGER NOT NULL,
    target INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    descents INTEGER NOT NULL,
    PRIMARY KEY (source, target)
);
CREATE TABLE arrays (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL, dtype TEXT NOT NULL, shape TEXT NOT NULL, checksum TEXT NOT NULL,
    PRIMARY KEY (owner, key, name)
);
"""
_TABLES = ("meta", "starts", "visits", "points", "assignments", "edges", "arrays")


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Chunk(Result):
    """The results of a set of starts: what one store transaction commits.

    Attributes
    ----------
    start : ndarray of shape (B,)
        Start indices, ascending.
    x : ndarray of shape (B, n_params)
        End points.
    loss, grad_norm : ndarray of shape (B,)
    lambda_min : ndarray of shape (B,)
        Smallest Hessian eigenvalue at each end point (NaN: not computed).
    status : ndarray of shape (B,)
        :class:`~landscape.Status` values of the descent.
    message : list of str
    nit_descent, nit_polish, pushes : ndarray of shape (B,)
    classification : list of Classification
        Of each end point.
    visit_start : ndarray of shape (V,)
        For each visited saddle, the start whose descent passed it.
    visit_x : ndarray of shape (V, n_params)
        The polished saddles.
    visit_classification : list of Classification
    traces : list of dict
        Loss and gradient-norm curves of some starts' descents: dicts with keys
        ``start`` and the arrays ``at``, ``loss``, ``grad_norm`` (the record)
        and ``plateau_at``, ``plateau_loss``, ``plateau_grad_norm``.
    """

    start: np.ndarray
    x: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    lambda_min: np.ndarray
    status: np.ndarray
    message: list
    nit_descent: np.ndarray
    nit_polish: np.ndarray
    pushes: np.ndarray
    classification: list
    visit_start: np.ndarray
    visit_x: np.ndarray
    visit_classification: list
    traces: list = dataclasses.field(default_factory=list)

    @property
    def nit(self):
        """Per start: all iterations, ``nit_descent + nit_polish``."""
        return np.asarray(self.nit_descent) + np.asarray(self.nit_polish)

    @property
    def success(self):
        """Per start: it ended at a critical point (``status`` is ``Status.CONVERGED``)."""
        return np.asarray(self.status) == int(Status.CONVERGED)

    def __len__(self):
        return len(self.start)


# ---- encoding -------------------------------------------------------------------------
def _pack(array):
    """An ndarray -> (bytes, dtype string, shape JSON, checksum): raw little-endian bytes."""
    a = np.asarray(array)
    if a.dtype.kind == "f":
        a = a.astype("<f8", copy=False)
    elif a.dtype.kind in "iu":
        a = a.astype("<i8", copy=False)
    elif a.dtype.kind == "b":
        a = a.astype("|b1", copy=False)
    else:
        raise TypeError(f"the store holds float, integer and boolean arrays only, got dtype "
                        f"{a.dtype}")
    data, dtype, shape = np.ascontiguousarray(a).tobytes(), a.dtype.str, json.dumps(list(a.shape))
    return data, dtype, shape, _checksum(data, dtype, shape)


def _checksum(data, dtype, shape):
    """SHA-256 (hex) of an array's dtype string, shape JSON and bytes."""
    h = hashlib.sha256()
    for part in (dtype.encode(), shape.encode()):
        h.update(len(part).to_bytes(4, "little") + part)
    h.update(data)
    return h.hexdigest()


def _unpack(data, dtype, shape, checksum, path, where):
    """Inverse of :func:`_pack`, checking the checksum and that the bytes fit dtype and shape.

    `where` names the array for the error messages: ``"table points, row id 3: array x"``.
    """
    if not (isinstance(data, bytes) and isinstance(dtype, str) and isinstance(shape, str)
            and checksum == _checksum(data, dtype, shape)):
        raise StoreError(f"store {path}: {where} fails its checksum; the file is damaged.  "
                         "Restore it from a backup, or move it away and re-run the scan into "
                         "a new store", path)
    if dtype not in _DTYPES:
        raise StoreError(f"store {path}: {where} has dtype {dtype!r}, which this version does "
                         "not read; the file is corrupt or from another program", path)
    try:
        shape = tuple(int(s) for s in json.loads(shape))
    except (ValueError, TypeError):
        raise StoreError(f"store {path}: {where} has an unreadable shape {shape!r}; the file "
                         "is corrupt", path) from None
    dt = np.dtype(dtype)
    if len(data) != math.prod(shape) * dt.itemsize:
        raise StoreError(f"store {path}: {where} has a size that does not match its shape "
                         f"{shape} and dtype {dtype}; the file is corrupt", path)
    return np.frombuffer(data, dtype=dt).reshape(shape).copy()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _encode_classification(c):
    """A Classification -> (JSON of its scalar fields, {field: ndarray})."""
    if not isinstance(c, Classification):
        raise TypeError(f"expected a Classification, got {type(c).__name__}")
    fields, arrays = {}, {}
    for f in dataclasses.fields(c):
        v = getattr(c, f.name)
        if isinstance(v, np.ndarray):
            arrays[f.name] = v
            fields[f.name] = {"__array__": f.name}
        else:
            fields[f.name] = _plain(v)
    return json.dumps(fields, sort_keys=True), arrays


def _decode_classification(text, arrays, path):
    try:
        fields = json.loads(text)
    except ValueError:
        raise StoreError(f"store {path} holds an unreadable classification; the file is "
                         "corrupt", path) from None
    known = {f.name for f in dataclasses.fields(Classification)}
    if not isinstance(fields, dict) or set(fields) - known:
        raise StoreError(f"store {path} holds a classification with fields this version does "
                         "not know; it was written by another version of landscape", path)
    for name, v in fields.items():
        if isinstance(v, dict) and "__array__" in v:
            if name not in arrays:
                raise StoreError(f"store {path} lacks the array {name!r} of a classification; "
                                 "the file is corrupt", path)
            fields[name] = arrays[name]
    return Classification(**fields)


def _float(v):
    """SQLite stores NaN as NULL: read it back as NaN."""
    return float("nan") if v is None else float(v)


def _normalise(settings):
    """Settings as plain JSON data (tuples become lists, numpy scalars numbers)."""
    try:
        return json.loads(json.dumps(settings, sort_keys=True, default=_plain))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"settings must be JSON-serialisable data: {exc}") from None


def _differences(stored, given, prefix=""):
    out = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key, "<missing>"), given.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: stored {_brief(a)}, given {_brief(b)}")
    return out


def _brief(v):
    text = json.dumps(v)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- the store --------------------------------------------------------------------------
class Store:
    """A scan's SQLite file.

    Use :meth:`create` for a new store and :meth:`open` for an existing one;
    a store is a context manager that closes its connection (and releases its
    write lock).

    A store created, or opened with ``write=True``, holds the store's write
    lock until it is closed: another writer, in this process or another, gets
    a :class:`~landscape.errors.StoreInUseError` naming the holder's process id
    at once.  Reading takes no lock (a finished scan can be read while another
    process writes to the file); a store opened without ``write=True`` takes
    the lock at its first write.

    Examples
    --------
    >>> from landscape.store import Store
    >>> with Store.create(":memory:", {"lr": 0.5}) as s:
    ...     s.settings, s.finished_starts().tolist()
    ({'lr': 0.5}, [])
    """

    def __init__(self, connection, path, lock=None):
        # use Store.create / Store.open
        self._conn = connection
        self.path = path
        self._lock = lock

    # ---- opening --------------------------------------------------------------------
    @classmethod
    def create(cls, path, settings):
        """Create a new store at `path` (``":memory:"`` for one that lives in memory).

        Parameters
        ----------
        path : str or os.PathLike
            Must not exist yet.
        settings : dict
            JSON-serialisable scan settings, kept in ``meta``.

        Returns
        -------
        Store
        """
        path = _as_path(path)
        settings = _normalise(settings)
        if not isinstance(settings, dict):
            raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
        if path != ":memory:" and os.path.exists(path):
            raise _exists(path)
        lock = None if path == ":memory:" else WriteLock.acquire(path)
        conn = None
        try:
            if lock is not None and os.path.exists(path):    # created while we took the lock
                raise _exists(path)
            conn = _connect(path)
            with _transaction(conn):
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("schema_version", json.dumps(SCHEMA_VERSION)),
                    ("settings", json.dumps(settings, sort_keys=True)),
                ])
        except BaseException:
            if conn is not None:
                conn.close()
            if lock is not None:
                lock.release()
            raise
        return cls(conn, path, lock)

    @classmethod
    def open(cls, path, settings=None, *, ignore=(), write=False):
        """Open an existing store, checking that it is one this version reads.

        Parameters
        ----------
        path : str or os.PathLike
        settings : dict, optional
            When given, the stored settings must equal them (except the keys in
            `ignore`): a store is never used to mix results of different scans.
        ignore : sequence of str
            Top-level settings keys allowed to differ.
        write : bool
            Take the store's write lock now (it is released by :meth:`close`),
            as a scan does before it computes anything.  Otherwise the first
            write takes it.  Reading needs no lock.

        Returns
        -------
        Store

        Raises
        ------
        StoreInUseError
            `write` is True and another writer holds the store.
        StoreError
            The file is missing, not an SQLite database, not a landscape store,
            corrupt, of another schema version, or its settings differ.
        """
        if not isinstance(write, bool):
            raise TypeError(f"write must be True or False, got {write!r}")
        path = _as_path(path)
        if path == ":memory:":
            raise StoreError("an in-memory store cannot be reopened; use Store.create(':memory:',"
                             " settings) or a file path", path)
        if not os.path.isfile(path):
            raise StoreError(f"no store at {path}; create one with Store.create(path, settings) "
                             "or run ls.scan(..., store=path)", path)
        with open(path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
        if header != _SQLITE_HEADER:
            raise StoreError(f"{path} is not an SQLite file, so not a landscape store (corrupt, "
                             "or another kind of file); move it away or pass another store path",
                             path)
        lock = WriteLock.acquire(path) if write else None
        conn = None
        try:
            conn = _connect(path)
            store = cls(conn, path, lock)
            store._check()
            if settings is not None:
                store.check_settings(settings, ignore=ignore)
        except BaseException:
            if conn is not None:
                conn.close()
            if lock is not None:
                lock.release()
            raise
        return store

    def _check(self):
        path = self.path
        try:
            # quick_check also rolls back the hot journal a killed writer left behind
            problems = [r[0] for r in self._conn.execute("PRAGMA quick_check").fetchall()]
            app = self._conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {path} is corrupt or not an SQLite database ({exc}); "
                             "move it away and re-run the scan into a new store", path) from None
        if problems != ["ok"]:
            raise StoreError(f"store {path} is corrupt (SQLite integrity check: "
                             f"{'; '.join(problems[:3])}); move it away and re-run the scan "
                             "into a new store", path)
        if app != _APPLICATION_ID or "meta" not in tables:
            raise StoreError(f"{path} is an SQLite database but not a landscape store; pass "
                             "another store path", path)
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(f"store {path} has schema version {version!r}, but this version "
                             f"of landscape reads schema version {SCHEMA_VERSION}; open it with "
                             "the landscape version that wrote it, or re-run the scan into a "
                             "new store", path)
        missing = set(_TABLES) - tables
        if missing:
            raise StoreError(f"store {path} lacks the tables {sorted(missing)}; the file is "
                             "corrupt: move it away and re-run the scan into a new store", path)

    def _meta(self, key):
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {self.path}: cannot read its meta table ({exc}); the file "
                             "is corrupt", self.path) from None
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            raise StoreError(f"store {self.path}: meta entry {key!r} is not valid JSON; the "
                             "file is corrupt", self.path) from None

    # ---- settings -------------------------------------------------------------------
    @property
    def settings(self):
        """The scan settings stored in ``meta`` (a dict)."""
        return self._meta("settings")

    @property
    def schema_version(self):
        return self._meta("schema_version")

    def check_settings(self, settings, *, ignore=()):
        """Raise StoreError unless the stored settings equal `settings` (keys in `ignore` aside)."""
        given = {k: v for k, v in _normalise(settings).items() if k not in ignore}
        stored = {k: v for k, v in (self.settings or {}).items() if k not in ignore}
        diff = _differences(stored, given)
        if diff:
            raise StoreError(
                f"store {self.path} was written by a scan with different settings, and results "
                "of different scans are never mixed:\n  " + "\n  ".join(diff[:10])
                + "\nPass the original settings to resume it, or choose a new store path.",
                self.path)

    def update_settings(self, settings):
        """Replace the stored settings (one transaction)."""
        self.lock_for_writing()
        text = json.dumps(_normalise(settings), sort_keys=True)
        with _transaction(self._conn):
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (text,))

    # ---- per-start results ------------------------------------------------------------
    def write_chunk(self, chunk, *, elapsed=0.0):
        """Commit the results of one chunk of starts in one transaction.

        Either every row of the chunk is stored or, if anything fails (or the
        process is killed), none is.  `elapsed` seconds are added to the
        store's :attr:`wall_seconds` in the same transaction.
        """
        if not isinstance(chunk, Chunk):
            raise TypeError(f"write_chunk expects a Chunk, got {type(chunk).__name__}")
        self.lock_for_writing()
        try:
            self._write_chunk(chunk, float(elapsed))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"store {self.path}: a start of this chunk is already stored "
                             f"({exc}); nothing of the chunk was written.  Write each start "
                             "once: a resumed scan skips finished_starts()", self.path) from None

    def _write_chunk(self, chunk, elapsed):
        conn = self._conn
        with _transaction(conn):
            self._add_seconds(elapsed)
            for t in chunk.traces:
                self._write_arrays("traces", str(int(t["start"])),
                                   {k: np.asarray(v, dtype=np.float64)
                                    for k, v in t.items() if k != "start"})
            for i, s in enumerate(chunk.start):
                s = int(s)
                text, arrays = _encode_classification(chunk.classification[i])
                conn.execute(
                    "INSERT INTO starts (start, x, x_dtype, x_shape, x_checksum, loss, "
                    "grad_norm, min_eigenvalue, status, message, descent_iterations, "
                    "polish_iterations, pushes, classification) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (s, *_pack(chunk.x[i]), float(chunk.loss[i]), float(chunk.grad_norm[i]),
                     float(chunk.lambda_min[i]), int(chunk.status[i]), str(chunk.message[i]),
                     int(chunk.nit_descent[i]), int(chunk.nit_polish[i]),
                     int(chunk.pushes[i]), text))
                self._write_arrays("starts", str(s), arrays)
            seq = {}
            for j, s in enumerate(chunk.visit_start):
                s = int(s)
                q = seq[s] = seq.get(s, -1) + 1
                text, arrays = _encode_classification(chunk.visit_classification[j])
                conn.execute("INSERT INTO visits (start, seq, x, x_dtype, x_shape, x_checksum, "
                             "classification) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (s, q, *_pack(chunk.visit_x[j]), text))
                self._write_arrays("visits", f"{s}/{q}", arrays)
            conn.execute("DELETE FROM meta WHERE key = 'finalized'")

    def _add_seconds(self, elapsed):
        if elapsed:
            total = (self._meta("wall_seconds") or 0.0) + elapsed
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES "
                               "('wall_seconds', ?)", (json.dumps(total),))

    def add_wall_seconds(self, elapsed):
        """Add `elapsed` seconds to :attr:`wall_seconds` (one transaction)."""
        self.lock_for_writing()
        with _transaction(self._conn):
            self._add_seconds(float(elapsed))

    @property
    def wall_seconds(self):
        """Seconds spent computing what the store holds, summed over every session."""
        return float(self._meta("wall_seconds") or 0.0)

    def read_traces(self):
        """The stored descent curves: ``{start: {"at": ..., "loss": ..., ...}}``, by start."""
        traces = self._read_arrays("traces")
        return {int(k): traces[k] for k in sorted(traces, key=int)}

    # ---- annotations: what other tools attach to a scan --------------------------------
    def set_annotation(self, key, value):
        """Attach JSON data to the store under `key` (replacing it), in one transaction.

        Annotations are not scan settings: the CLI keeps the model description
        there, ``landscape convexity`` its direction-wise test results.
        """
        if not isinstance(key, str) or not key:
            raise TypeError(f"annotation key must be a non-empty str, got {key!r}")
        self.lock_for_writing()
        text = json.dumps(_normalise(value), sort_keys=True)
        with _transaction(self._conn):
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               ("annotation:" + key, text))

    def annotations(self):
        """Every annotation as ``{key: value}``."""
        rows = self._query("SELECT key, value FROM meta WHERE key LIKE 'annotation:%' "
                           "ORDER BY key")
        out = {}
        for key, text in rows:
            try:
                out[key[len("annotation:"):]] = json.loads(text)
            except ValueError:
                raise StoreError(f"store {self.path}: annotation {key!r} is not valid JSON; "
                                 "the file is corrupt", self.path) from None
        return out

    def _write_arrays(self, owner, key, arrays):
        for name, a in arrays.items():
            self._conn.execute("INSERT INTO arrays (owner, key, name, data, dtype, shape, "
                               "checksum) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (owner, key, name, *_pack(a)))

    def _read_arrays(self, owner):
        out = {}
        for key, name, data, dtype, shape, checksum in self._query(
                "SELECT key, name, data, dtype, shape, checksum FROM arrays WHERE owner = ?",
                (owner,)):
            where = f"table arrays, row owner {owner!r}, key {key!r}: array {name}"
            out.setdefault(key, {})[name] = _unpack(data, dtype, shape, checksum, self.path, where)
        return out

    def _query(self, sql, params=()):
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {self.path}: query failed ({exc}); the file is corrupt or "
                             "from another version", self.path) from None

    def finished_starts(self):
        """Indices of the starts whose results are stored, ascending (int ndarray)."""
        rows = self._query("SELECT start FROM starts ORDER BY start")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def n_finished(self):
        """How many starts are stored."""
        return int(self._query("SELECT COUNT(*) FROM starts")[0][0])

    def read_outcomes(self, n_params=None):
        """Every stored start as one :class:`Chunk`, ordered by start index.

        Parameters
        ----------
        n_params : int, optional
            Length of x; needed only to shape empty results.
        """
        rows = self._query(
            "SELECT start, x, x_dtype, x_shape, loss, grad_norm, min_eigenvalue, status, "
            "message, descent_iterations, polish_iterations, pushes, classification, x_checksum "
            "FROM starts ORDER BY start")
        arrays = self._read_arrays("starts")
        vrows = self._query("SELECT start, seq, x, x_dtype, x_shape, classification, x_checksum "
                            "FROM visits ORDER BY start, seq")
        varrays = self._read_arrays("visits")
        xs = [_unpack(r[1], r[2], r[3], r[13], self.path,
                      f"table starts, row start {r[0]}: array x") for r in rows]
        vxs = [_unpack(r[2], r[3], r[4], r[6], self.path,
                       f"table visits, row start {r[0]}, seq {r[1]}: array x") for r in vrows]
        n = n_params if n_params is not None else (len(xs[0]) if xs else 0)
        return Chunk(
            start=np.array([r[0] for r in rows], dtype=np.int64),
            x=np.array(xs, dtype=np.float64).reshape(len(rows), n),
            loss=np.array([_float(r[4]) for r in rows]),
            grad_norm=np.array([_float(r[5]) for r in rows]),
            lambda_min=np.array([_float(r[6]) for r in rows]),
            status=np.array([r[7] for r in rows], dtype=np.int64),
            message=[r[8] for r in rows],
            nit_descent=np.array([r[9] for r in rows], dtype=np.int64),
            nit_polish=np.array([r[10] for r in rows], dtype=np.int64),
            pushes=np.array([r[11] for r in rows], dtype=np.int64),
            classification=[_decode_classification(r[12], arrays.get(str(r[0]), {}), self.path)
                            for r in rows],
            visit_start=np.array([r[0] for r in vrows], dtype=np.int64),
            visit_x=np.array(vxs, dtype=np.float64).reshape(len(vrows), n),
            visit_classification=[
                _decode_classification(r[5], varrays.get(f"{r[0]}/{r[1]}", {}), self.path)
                for r in vrows])

    # ---- distinct points, assignments and edges --------------------------------------
    def write_points(self, points, assignment, edges, *, finalized=None, loops=None):
        """Replace the distinct points, the start -> point assignment and the graph edges.

        One transaction.

        Parameters
        ----------
        points : sequence of dict
            Keys ``id``, ``x``, ``classification``, ``basin_count``,
            ``first_start`` (-1 for none), ``found_by``, ``dimension`` (of the
            critical manifold the point stands for) and ``n_members`` (distinct
            points of it that the scan reached).
        assignment : sequence of (start, point) pairs
            Point -1: the start ended at no critical point.
        edges : sequence of (source, target, visits, descents)
        finalized : dict, optional
            Stored as ``meta['finalized']`` in the same transaction.
        loops : dict, optional
            ``{minimum: (saddle, GroupElement)}``: the self-loops of the graph, each
            minimum's lowest saddle joining it to a symmetric copy of itself and the
            group element relating the two sides (stored as arrays, owner
            ``"loops"``).
        """
        self.lock_for_writing()
        conn = self._conn
        with _transaction(conn):
            for table in ("points", "assignments", "edges"):
                conn.execute(f"DELETE FROM {table}")          # fixed table names, no input
            conn.execute("DELETE FROM arrays WHERE owner IN ('points', 'loops')")
            for p in points:
                c = p["classification"]
                text, arrays = _encode_classification(c)
                conn.execute(
                    "INSERT INTO points (id, x, x_dtype, x_shape, x_checksum, kind, loss, "
                    "basin_count, first_start, found_by, dimension, n_members, classification) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (int(p["id"]), *_pack(p["x"]), c.kind, float(c.loss), int(p["basin_count"]),
                     int(p["first_start"]), str(p["found_by"]), int(p["dimension"]),
                     int(p["n_members"]), text))
                self._write_arrays("points", str(int(p["id"])), arrays)
            for q, (saddle, g) in (loops or {}).items():
                self._write_arrays("loops", str(int(q)), dict(
                    saddle=np.int64(saddle), neurons=g.neurons, input_map=g.input_map,
                    sign=np.int64(g.sign), distance=np.float64(g.distance)))
            conn.executemany("INSERT INTO assignments (start, point) VALUES (?, ?)",
                             [(int(s), int(q)) for s, q in assignment])
            conn.executemany("INSERT INTO edges (source, target, visits, descents) "
                             "VALUES (?, ?, ?, ?)",
                             [tuple(int(v) for v in e) for e in edges])
            conn.execute("DELETE FROM meta WHERE key = 'finalized'")
            if finalized is not None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('finalized', ?)",
                             (json.dumps(_normalise(finalized), sort_keys=True),))

    @property
    def finalized(self):
        """``meta['finalized']`` (written with the points), or None."""
        return self._meta("finalized")

    @property
    def is_complete(self):
        """The store holds a finished scan: every one of its ``settings["n_starts"]`` starts,
        and the distinct points, assignment and edges written for that many (a store whose
        scan was killed, or extended to more starts, is not complete until resumed)."""
        settings = self.settings
        n = settings.get("n_starts") if isinstance(settings, dict) else None
        return n is not None and self.finalized == {"n_starts": n} and self.n_finished() == n

    def read_points(self):
        """The distinct points as a list of dicts (keys as in :meth:`write_points`), by id."""
        arrays = self._read_arrays("points")
        rows = self._query("SELECT id, x, x_dtype, x_shape, basin_count, first_start, found_by, "
                           "classification, x_checksum, dimension, n_members FROM points "
                           "ORDER BY id")
        return [dict(id=r[0], x=_unpack(r[1], r[2], r[3], r[8], self.path,
                                        f"table points, row id {r[0]}: array x"),
                     basin_count=r[4], first_start=r[5], found_by=r[6], dimension=r[9],
                     n_members=r[10],
                     classification=_decode_classification(r[7], arrays.get(str(r[0]), {}),
                                                           self.path)) for r in rows]

    def check_arrays(self):
        """Check the checksum of every stored array, reading one row at a time.

        Raises
        ------
        StoreError
            Naming the table and row of the first array that fails its checksum.
        """
        queries = [("SELECT start, x, x_dtype, x_shape, x_checksum FROM starts",
                    "table starts, row start {}: array x"),
                   ("SELECT start || ', seq ' || seq, x, x_dtype, x_shape, x_checksum "
                    "FROM visits", "table visits, row start {}: array x"),
                   ("SELECT id, x, x_dtype, x_shape, x_checksum FROM points",
                    "table points, row id {}: array x"),
                   ("SELECT 'owner ' || quote(owner) || ', key ' || quote(key) || ': array ' "
                    "|| name, data, dtype, shape, checksum FROM arrays", "table arrays, row {}")]
        for sql, where in queries:
            try:
                for row in self._conn.execute(sql):
                    _unpack(*row[1:], self.path, where.format(row[0]))
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"store {self.path}: query failed ({exc}); the file is "
                                 "corrupt or from another version", self.path) from None

    def read_assignment(self):
        """(start, point) pairs as two int ndarrays, ordered by start."""
        rows = self._query("SELECT start, point FROM assignments ORDER BY start")
        return (np.array([r[0] for r in rows], dtype=np.int64),
                np.array([r[1] for r in rows], dtype=np.int64))

    def read_loops(self):
        """The self-loops written with the points: ``{minimum: (saddle, GroupElement)}``."""
        from .models.symmetry import GroupElement

        return {int(q): (int(a["saddle"]), GroupElement(
                    neurons=a["neurons"], input_map=a["input_map"], sign=int(a["sign"]),
                    distance=float(a["distance"])))
                for q, a in sorted(self._read_arrays("loops").items(), key=lambda t: int(t[0]))}

    def read_edges(self):
        """Edges as a list of (source, target, visits, descents), ordered."""
        return [tuple(r) for r in self._query(
            "SELECT source, target, visits, descents FROM edges ORDER BY source, target")]

    # ---- lifetime --------------------------------------------------------------------
    def lock_for_writing(self):
        """Take the write lock unless held (StoreInUseError if another writer holds it).

        Every write takes it; a scan takes it before it computes anything.
        """
        if self.path != ":memory:" and not self.is_locked:
            self._lock = WriteLock.acquire(self.path)

    def remove(self):
        """Delete the store's file and close it: only a store that holds no start.

        The write lock is taken first and released last, so no other writer
        can open the file in between.

        Raises
        ------
        StoreError
            The store holds starts, or lives in memory.
        """
        if self.path == ":memory:":
            raise StoreError("an in-memory store has no file to remove; close it instead",
                             self.path)
        self.lock_for_writing()
        if self.n_finished():
            raise StoreError(f"store {self.path} holds {self.n_finished()} starts; only a store "
                             "that holds none is removed (move the file away yourself)",
                             self.path)
        self._conn.close()
        try:
            os.remove(self.path)
        finally:
            self.close()

    @property
    def is_locked(self):
        """Whether this Store object holds the store's write lock."""
        return self._lock is not None and self._lock.held

    def close(self):
        """Close the connection and release the write lock, if held."""
        try:
            self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"Store({self.path!r})"


def _as_path(path):
    if isinstance(path, Store):
        return path.path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"store must be a file path (str or os.PathLike), got "
                        f"{type(path).__name__}")
    return os.fspath(path)


def _exists(path):
    return StoreError(f"store {path} already exists; open it with Store.open({path!r}) or "
                      "choose a new path", path)


def _connect(path):
    # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT)
    try:
        return sqlite3.connect(path, isolation_level=None, timeout=60.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {exc}; check the path and its permissions",
                         path) from None


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False
