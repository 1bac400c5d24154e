"""The SQLite run store: exact round-trips, one transaction per chunk, clear errors, no pickles."""

import ast
import gc
import importlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import landscape as ls
import landscape.store as store_module
from landscape.errors import LandscapeError, StoreError, StoreInUseError
from landscape.store import SCHEMA_VERSION, Chunk, Store

SETTINGS = {"model": {"class": "ReluTeacherStudent", "probe": [0.25, 1.5]}, "lr": 0.625,
            "seed": {"entropy": 2**100 + 7, "spawn_key": []}, "n_starts": 10}
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(store_module.__file__)))


def _classifications():
    """A strict minimum (eigenvalues), a non-strict saddle (witness) and a non-critical point."""
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    trap = ls.AutogradModel(lambda z: (z[1] - z[0] ** 2) * (z[1] - 2 * z[0] ** 2), 2)
    return [ls.classify(m, m.flatten(np.eye(3))), ls.classify(trap, [0.0, 0.0]),
            ls.classify(m, m.sample_init(1, rng=0)[0])]


def _chunk(starts, rng, n=9, visits=1):
    cs = _classifications()
    B = len(starts)
    vs = np.repeat(np.asarray(starts[:1], dtype=int), visits)
    return Chunk(start=np.asarray(starts, dtype=int), x=rng.standard_normal((B, n)),
                 loss=rng.random(B), grad_norm=np.full(B, 1e-13),
                 lambda_min=np.where(np.arange(B) % 2, np.nan, 0.25),
                 status=np.zeros(B, dtype=int), message=[f"it's \"done\" {s}" for s in starts],
                 nit_descent=np.arange(B), nit_polish=np.ones(B, dtype=int),
                 pushes=np.zeros(B, dtype=int),
                 classification=[cs[i % 3] for i in range(B)],
                 visit_start=vs, visit_x=rng.standard_normal((len(vs), n)),
                 visit_classification=[cs[1]] * len(vs))


def _same_classification(a, b):
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for k in da:
        va, vb = getattr(a, k), getattr(b, k)
        if isinstance(va, np.ndarray):
            assert_array_equal(va, vb)
            assert va.dtype == vb.dtype
        elif isinstance(va, float) and np.isnan(va):
            assert np.isnan(vb)
        else:
            assert va == vb, k


def _same_chunk(a, b):
    for name in ("start", "x", "loss", "grad_norm", "lambda_min", "status",
                 "nit_descent", "nit_polish", "pushes", "visit_start", "visit_x"):
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.message == b.message
    for ca, cb in zip(a.classification + a.visit_classification,
                      b.classification + b.visit_classification, strict=True):
        _same_classification(ca, cb)


def test_chunks_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "run.db"
    first, second = _chunk([3, 4, 5], rng), _chunk([0, 1, 2, 6], rng, visits=2)
    with Store.create(path, SETTINGS) as s:
        assert s.finished_starts().tolist() == []
        s.write_chunk(first)
        s.write_chunk(second)
    with Store.open(path, SETTINGS) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.settings == SETTINGS                   # big ints survive JSON
        assert s.finished_starts().tolist() == [0, 1, 2, 3, 4, 5, 6]
        assert s.n_finished() == 7
        got = s.read_outcomes()
    order = np.argsort(np.concatenate([first.start, second.start]))

    def cat(name):
        return np.concatenate([getattr(first, name), getattr(second, name)])[order]

    assert_array_equal(got.x, cat("x"))                 # float64 bit-exact
    assert_array_equal(got.lambda_min, cat("lambda_min"))   # NaN survives NULL
    assert got.message == [(first.message + second.message)[i] for i in order]
    cls = first.classification + second.classification
    for i, c in zip(order, got.classification, strict=True):
        _same_classification(cls[i], c)
    assert got.visit_start.tolist() == [0, 0, 3]
    assert got.visit_classification[0].kind == "non-strict-saddle"
    assert got.visit_classification[0].witness.shape == (2,)


def test_in_memory_store():
    rng = np.random.default_rng(2)
    c = _chunk([0, 1], rng)
    with Store.create(":memory:", {"a": 1}) as s:
        s.write_chunk(c)
        _same_chunk(s.read_outcomes(), c)


def test_a_chunk_is_one_transaction(tmp_path):
    rng = np.random.default_rng(3)
    with Store.create(tmp_path / "run.db", SETTINGS) as s:
        s.write_chunk(_chunk([0, 1, 2], rng))
        with pytest.raises(StoreError, match="already stored"):
            s.write_chunk(_chunk([7, 8, 2, 9], rng))      # start 2 again: all or nothing
        assert s.finished_starts().tolist() == [0, 1, 2]
        assert s.read_outcomes().visit_start.tolist() == [0]


def test_points_assignment_and_edges_round_trip(tmp_path):
    cs = _classifications()
    rng = np.random.default_rng(4)
    points = [dict(id=i, x=rng.standard_normal(9), classification=cs[i], basin_count=10 - i,
                   first_start=i - 1, found_by="descent", dimension=i, n_members=3 + i)
              for i in range(2)]
    path = tmp_path / "run.db"
    with Store.create(path, SETTINGS) as s:
        assert s.finalized is None
        s.write_points(points, [(0, 1), (1, -1), (2, 0)], [(1, 0, 3, 2)],
                       finalized={"n_starts": 3})
        s.write_points(points, [(0, 1), (1, -1), (2, 0)], [(1, 0, 3, 2)],
                       finalized={"n_starts": 3})          # replaces, no duplicates
    with Store.open(path) as s:
        got = s.read_points()
        starts, pts = s.read_assignment()
        assert s.read_edges() == [(1, 0, 3, 2)]
        assert s.finalized == {"n_starts": 3}
    assert starts.tolist() == [0, 1, 2] and pts.tolist() == [1, -1, 0]
    for p, q in zip(points, got, strict=True):
        assert_array_equal(p["x"], q["x"])
        keys = ("id", "basin_count", "first_start", "found_by", "dimension", "n_members")
        assert [p[k] for k in keys] == [q[k] for k in keys]
        _same_classification(p["classification"], q["classification"])


def test_different_settings_refuse(tmp_path):
    path = tmp_path / "run.db"
    Store.create(path, SETTINGS).close()
    other = dict(SETTINGS, lr=0.5)
    with pytest.raises(StoreError, match=r"lr: stored 0\.625, given 0\.5") as err:
        Store.open(path, other)
    assert str(path) in str(err.value) and "new store path" in str(err.value)
    assert err.value.path == str(path)
    teacher = dict(SETTINGS, model={"class": "ReluTeacherStudent", "probe": [0.25, 1.0]})
    with pytest.raises(StoreError, match="model.probe"):
        Store.open(path, teacher)
    with Store.open(path, dict(SETTINGS, n_starts=20), ignore=("n_starts",)) as s:
        assert s.settings["n_starts"] == 10


@pytest.mark.parametrize("version", [1, 3])
def test_another_schema_version_is_refused(tmp_path, version):
    assert SCHEMA_VERSION == 2             # 2 added the array checksums and manifold columns
    path = tmp_path / "run.db"
    with Store.create(path, SETTINGS) as s:
        s.write_chunk(_chunk([0, 1], np.random.default_rng(9)))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        if version == 1:                               # what version 1 wrote: no checksums
            for table, column in [("starts", "x_checksum"), ("visits", "x_checksum"),
                                  ("points", "x_checksum"), ("arrays", "checksum")]:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.close()
    before = path.read_bytes()
    for opening in (lambda: Store.open(path), lambda: Store.open(path, write=True),
                    lambda: ls.Scan.load(path)):
        with pytest.raises(StoreError, match=f"schema version {version}") as err:
            opening()
        assert str(path) in str(err.value) and "new store" in str(err.value)
        assert isinstance(err.value, LandscapeError)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 10,
                                     np.random.default_rng(5).bytes(4096)],
                         ids=["empty", "text", "random"])
def test_non_sqlite_files_are_refused(tmp_path, content):
    path = tmp_path / "run.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not an SQLite file") as err:
        Store.open(path)
    assert str(path) in str(err.value)


def test_other_sqlite_databases_are_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not a landscape store"):
        Store.open(path)


def test_a_damaged_store_is_refused(tmp_path):
    path = tmp_path / "run.db"
    rng = np.random.default_rng(6)
    with Store.create(path, SETTINGS) as s:
        for i in range(20):
            s.write_chunk(_chunk(list(range(10 * i, 10 * i + 10)), rng, n=200))
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for p in range(2, len(data) // page):             # scribble over every page but the first
        data[p * page + 8: p * page + 60] = rng.bytes(52)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt") as err:
        s = Store.open(path)
        s.read_outcomes()
    assert str(path) in str(err.value)


# ---- checksums: a damaged array is an error naming its table and row --------------------
def _store_with_every_kind_of_array(path):
    """Starts 0..2 (start 1's classification has a witness), a visit of start 0, two points."""
    rng = np.random.default_rng(11)
    cs = _classifications()
    points = [dict(id=i, x=rng.standard_normal(9), classification=cs[i], basin_count=1,
                   first_start=i, found_by="descent", dimension=0, n_members=1) for i in range(2)]
    settings = dict(SETTINGS, n_starts=3, model=dict(SETTINGS["model"], n_params=9))
    with Store.create(path, settings) as s:
        s.write_chunk(_chunk([0, 1, 2], rng))
        s.write_points(points, [(0, 0), (1, 1), (2, -1)], [], finalized={"n_starts": 3})


def _flip_a_bit(path, table, column, where, params, bit=77):
    """Flip one bit of one stored blob, as a failing disk would: its checksum stays."""
    with sqlite3.connect(path) as conn:
        (blob,) = conn.execute(f"SELECT {column} FROM {table} WHERE {where}", params).fetchone()
        damaged = bytearray(blob)
        damaged[bit // 8] ^= 1 << (bit % 8)
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (bytes(damaged), *params))
    conn.close()


_DAMAGES = {   # what is damaged: (table, column, row, its parameters, the row named, the reader)
    "start x": ("starts", "x", "start = ?", (2,), "table starts, row start 2: array x",
                lambda s: s.read_outcomes()),
    "visit x": ("visits", "x", "start = ? AND seq = ?", (0, 0),
                "table visits, row start 0, seq 0: array x", lambda s: s.read_outcomes()),
    "point x": ("points", "x", "id = ?", (1,), "table points, row id 1: array x",
                lambda s: s.read_points()),
    "point eigenvalues": ("arrays", "data", "owner = ? AND key = ? AND name = ?",
                          ("points", "0", "eigenvalues"),
                          "table arrays, row owner 'points', key '0': array eigenvalues",
                          lambda s: s.read_points()),
    "start witness": ("arrays", "data", "owner = ? AND key = ? AND name = ?",
                      ("starts", "1", "witness"),
                      "table arrays, row owner 'starts', key '1': array witness",
                      lambda s: s.read_outcomes()),
}


@pytest.mark.parametrize("damage", list(_DAMAGES))
def test_a_flipped_bit_in_any_stored_array_names_its_table_and_row(tmp_path, damage):
    table, column, where, params, named, read = _DAMAGES[damage]
    path = tmp_path / "run.db"
    _store_with_every_kind_of_array(path)
    with Store.open(path) as s:                       # intact: every array reads back
        read(s)
        s.check_arrays()
    _flip_a_bit(path, table, column, where, params)
    before = path.read_bytes()
    with Store.open(path) as s:                       # SQLite itself sees nothing wrong
        for check in (read, Store.check_arrays):
            with pytest.raises(StoreError) as err:
                check(s)
            message = str(err.value)
            assert message.startswith(f"store {path}: {named} fails its checksum")
            assert "damaged" in message and "re-run the scan into a new store" in message
            assert err.value.path == str(path)
    with pytest.raises(StoreError, match=re.escape(named)):
        ls.Scan.load(path)
    assert path.read_bytes() == before                # a failed check writes nothing


def test_a_flipped_bit_in_the_file_is_caught(tmp_path):
    """The issue's case: one bit of a point's x flipped on disk, under SQLite's feet."""
    path = tmp_path / "run.db"
    _store_with_every_kind_of_array(path)
    with Store.open(path) as s:
        x = s.read_points()[1]["x"]
    data = bytearray(path.read_bytes())
    at = data.find(x.tobytes())
    assert at > 0 and data.find(x.tobytes(), at + 1) == -1
    data[at + 8 * 3 + 6] ^= 0x10                     # x[3]: one bit of its exponent
    path.write_bytes(bytes(data))
    with Store.open(path) as s:
        assert s.read_outcomes().x.shape == (3, 9)    # the rest of the store is readable
        with pytest.raises(StoreError, match="table points, row id 1: array x fails its "
                                             "checksum; the file is damaged"):
            s.read_points()


def test_each_array_has_a_checksum_column(tmp_path):
    path = tmp_path / "run.db"
    _store_with_every_kind_of_array(path)
    with sqlite3.connect(path) as conn:
        for table, column in [("starts", "x_checksum"), ("visits", "x_checksum"),
                              ("points", "x_checksum"), ("arrays", "checksum")]:
            values = [r[0] for r in conn.execute(f"SELECT {column} FROM {table}")]
            assert values and all(len(v) == 64 for v in values), table     # SHA-256, hex
            assert len(set(values)) == len(values) or table == "arrays", table
    conn.close()


def test_missing_and_existing_paths(tmp_path):
    path = tmp_path / "run.db"
    with pytest.raises(StoreError, match="no store at"):
        Store.open(path)
    Store.create(path, SETTINGS).close()
    with pytest.raises(StoreError, match="already exists"):
        Store.create(path, SETTINGS)
    with pytest.raises(TypeError, match="file path"):
        Store.open(42)


def test_queries_are_parameterised(tmp_path):
    path = tmp_path / "run.db"
    evil = "x'); DROP TABLE starts; --"
    with Store.create(path, dict(SETTINGS, note=evil)) as s:
        c = _chunk([0], np.random.default_rng(7))
        s.write_chunk(Chunk(**{**{f: getattr(c, f) for f in c.to_dict()}, "message": [evil]}))
    with Store.open(path) as s:
        assert s.settings["note"] == evil
        assert s.read_outcomes().message == [evil]


def _imported_modules(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_store_never_pickles(tmp_path):
    assert not _imported_modules(store_module.__file__) & {
        "pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
    path = tmp_path / "run.db"
    with Store.create(path, SETTINGS) as s:
        s.write_chunk(_chunk(list(range(30)), np.random.default_rng(8), visits=3))
    conn = sqlite3.connect(path)
    blobs = 0
    for table, col, dtype_col, shape_col in [("starts", "x", "x_dtype", "x_shape"),
                                             ("visits", "x", "x_dtype", "x_shape"),
                                             ("arrays", "data", "dtype", "shape")]:
        for data, dtype, shape in conn.execute(
                f"SELECT {col}, {dtype_col}, {shape_col} FROM {table}"):
            blobs += 1
            # a pickle starts with PROTO (0x80, protocol 2..5) and ends with STOP (".")
            assert not (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
                        and data.endswith(b"."))
            # and each blob is exactly the raw bytes of an array of its dtype and shape
            assert dtype in ("<f8", "<i8", "|b1")
            size = np.prod(json.loads(shape), dtype=int) * np.dtype(dtype).itemsize
            assert len(data) == size
    conn.close()
    assert blobs >= 30 + 3


def test_a_killed_writer_leaves_whole_chunks(tmp_path):
    """kill -9 while chunks are being written: every stored chunk is whole."""
    path = tmp_path / "run.db"
    Store.create(path, SETTINGS).close()
    code = textwrap.dedent(f"""
        import numpy as np
        from landscape.store import Store, Chunk
        from landscape.classify import Classification
        c = Classification(kind="not-critical", loss=1.0, grad_norm=1.0)
        s = Store.open({str(path)!r})
        rng = np.random.default_rng(0)
        for i in range(100000):
            st = np.arange(25 * i, 25 * i + 25)
            s.write_chunk(Chunk(start=st, x=rng.standard_normal((25, 2000)), loss=np.ones(25),
                grad_norm=np.ones(25), lambda_min=np.ones(25), status=np.ones(25, int),
                message=["m"] * 25, nit_descent=st, nit_polish=st, pushes=st,
                classification=[c] * 25, visit_start=np.zeros(0, int),
                visit_x=np.zeros((0, 2000)), visit_classification=[]))
    """)
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(path, timeout=60) as conn:
                done = conn.execute("SELECT COUNT(*) FROM starts").fetchone()[0]
            conn.close()
            if done >= 100 or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)                               # most likely mid-transaction now
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    with Store.open(path) as s:
        finished = s.finished_starts()
    assert len(finished) >= 100 and len(finished) % 25 == 0
    assert_array_equal(finished, np.arange(len(finished)))


# ---- one writer at a time ----------------------------------------------------------------
lock_module = importlib.import_module("landscape._lock")


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "run.db"
    lock_file = tmp_path / "run.db.lock"
    first = Store.create(path, SETTINGS)
    assert first.is_locked and lock_file.read_text().strip() == str(os.getpid())
    for second in (lambda: Store.open(path, write=True),
                   lambda: Store.open(path, SETTINGS, write=True)):
        with pytest.raises(StoreInUseError) as err:
            second()
        assert str(err.value).startswith(f"store {path} is in use by process {os.getpid()}")
        assert "another scan is writing it" in str(err.value) and "--store" in str(err.value)
        assert err.value.pid == os.getpid() and err.value.path == str(path)
        assert isinstance(err.value, StoreError)
    reader = Store.open(path)                          # reading needs no lock...
    assert reader.settings == SETTINGS and not reader.is_locked
    with pytest.raises(StoreInUseError, match=f"process {os.getpid()}"):
        reader.set_annotation("note", 1)               # ...writing takes it at the first write
    assert reader.annotations() == {}
    first.write_chunk(_chunk([0, 1], np.random.default_rng(12)))
    first.close()
    assert not lock_file.exists() and not first.is_locked
    reader.set_annotation("note", 1)                   # free now: the reader takes it
    assert reader.is_locked and reader.annotations() == {"note": 1}
    reader.close()
    with Store.open(path, write=True) as again:
        assert again.is_locked and again.finished_starts().tolist() == [0, 1]
    assert not lock_file.exists()


def test_a_failed_open_releases_the_lock(tmp_path):
    path = tmp_path / "run.db"
    Store.create(path, SETTINGS).close()
    with pytest.raises(StoreError, match="different settings"):
        Store.open(path, dict(SETTINGS, lr=1.0), write=True)
    with pytest.raises(StoreError, match="already exists"):
        Store.create(path, SETTINGS)
    assert not (tmp_path / "run.db.lock").exists()
    Store.open(path, write=True)                       # never closed, then dropped:
    gc.collect()
    Store.open(path, write=True).close()               # its lock went with it


def test_a_finished_store_is_read_while_it_is_locked(tmp_path):
    m = ls.ReluTeacherStudent(teacher=np.eye(3), n_students=3)
    path = tmp_path / "run.db"
    s = ls.scan(m, 6, rng=0, lr=1.0, store=path, progress=False)
    with Store.open(path, write=True):
        loaded = ls.Scan.load(path)
        assert [p.kind for p in loaded.points] == [p.kind for p in s.points]
        assert_array_equal(loaded.outcomes.x, s.outcomes.x)
        with pytest.raises(StoreInUseError):           # a scan writes, even to a finished store
            ls.scan(m, 6, rng=0, lr=1.0, store=path, progress=False)


_HOLDER = """
import os, sys, time
from landscape.store import Store
s = Store.open({path!r}, write=True)
if {fork}:
    child = os.fork()
    if child == 0:                  # a worker that outlives its parent must not keep the lock
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
print("locked", flush=True)
time.sleep(60)
"""


def _hold_in_subprocess(path, fork=False):
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(path=str(path), fork=fork)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline().strip() for _ in range(2 if fork else 1)]
    assert lines[-1] == "locked", proc.stderr.read()
    return proc, (int(lines[0]) if fork else None)


@pytest.mark.parametrize("fork", [False, pytest.param(True, marks=pytest.mark.skipif(
    not hasattr(os, "fork"), reason="needs os.fork"))], ids=["process", "process-with-a-child"])
def test_the_lock_dies_with_its_holder(tmp_path, fork):
    path = tmp_path / "run.db"
    Store.create(path, SETTINGS).close()
    proc, child = _hold_in_subprocess(path, fork)
    try:
        with pytest.raises(StoreInUseError, match=f"in use by process {proc.pid} ") as err:
            Store.open(path, write=True)
        assert err.value.pid == proc.pid
        assert Store.open(path).settings == SETTINGS  # readers are not blocked
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Store.open(path, write=True) as s:       # kill -9 released it
            assert s.is_locked
            s.set_annotation("after", "kill")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if child is not None:
            os.kill(child, signal.SIGKILL)


def test_without_fcntl_an_exclusive_lock_file_with_stale_detection(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "fcntl", None)
    path = tmp_path / "run.db"
    lock_file = tmp_path / "run.db.lock"
    first = Store.create(path, SETTINGS)
    assert lock_file.read_text().strip() == str(os.getpid())
    with pytest.raises(StoreInUseError, match=f"in use by process {os.getpid()} "):
        Store.open(path, write=True)
    first.close()
    assert not lock_file.exists()
    # a lock file left by a process that is gone is taken over
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock_file.write_text(gone.stdout)
    with Store.open(path, write=True) as s:
        assert s.is_locked and lock_file.read_text().strip() == str(os.getpid())
    assert not lock_file.exists()
    # one whose process is alive is not
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_file.write_text(f"{alive.pid}\n")
        stale = f"the lock is stale: delete {re.escape(str(lock_file))}"
        with pytest.raises(StoreInUseError, match=f"in use by process {alive.pid} .*{stale}"):
            Store.open(path, write=True)
        assert lock_file.read_text().strip() == str(alive.pid)
    finally:
        alive.kill()
        alive.wait()
