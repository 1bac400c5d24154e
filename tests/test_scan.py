"""Scans: the V = I_8 landscape of Safran et al., resumption after kill -9, executors, the graph."""

import concurrent.futures
import dataclasses
import importlib
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import landscape as ls
from landscape.errors import StoreError
from landscape.graph import read_graph
from landscape.scan import Scan, resume_plan, resume_scan, scan
from landscape.store import Store

store_module = importlib.import_module("landscape.store")

K = 8
N_STARTS = 500
LR = 5 / K
GTOL = 1e-12
SPURIOUS_RANGE = (0.05, 0.20)
# the package, not the function ls.scan that shadows it as an attribute of landscape
scan_module = importlib.import_module("landscape.scan")
pipeline = importlib.import_module("landscape.scan.pipeline")    # executors run pipeline.run_chunk
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(scan_module.__file__))))


def _model(k=K):
    return ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted in-process scan of V = I_8, k = 8, 500 Xavier starts, seed 0."""
    return scan(_model(), N_STARTS, rng=0, lr=LR, chunk_size=N_STARTS, progress=False)


def assert_same_scan(a, b):
    """Same per-start outcomes, same distinct points, same graph -- bit for bit."""
    for name in ("start", "point", "x", "loss", "grad_norm", "status"):
        assert_array_equal(getattr(a.outcomes, name), getattr(b.outcomes, name), err_msg=name)
    assert a.outcomes.kind == b.outcomes.kind
    assert len(a.points) == len(b.points)
    for p, q in zip(a.points, b.points):
        assert_array_equal(p.x, q.x)
        assert (p.kind, p.loss, p.basin_count, p.first_start, p.found_by) == (
            q.kind, q.loss, q.basin_count, q.first_start, q.found_by)
    assert a.edges == b.edges
    assert list(a.graph.nodes(data=True)) == list(b.graph.nodes(data=True))
    assert list(a.graph.edges(data=True)) == list(b.graph.edges(data=True))


# ---- the landscape of V = I_8 ---------------------------------------------------------------
def test_identity_teacher_k8_has_one_spurious_minimum(reference):
    s = reference
    m = _model()
    assert s.n_starts == N_STARTS
    minima = s.minima
    assert [p.kind for p in minima] == ["strict-minimum", "strict-minimum"]
    glob, spurious = minima
    assert glob.classification.is_global and not spurious.classification.is_global
    assert s.spurious_minima == [spurious]
    # every start ended at one of the two minima, certified
    assert np.all(s.outcomes.status == int(ls.Status.CONVERGED))
    assert np.all(s.outcomes.grad_norm <= GTOL)
    assert set(s.outcomes.point.tolist()) == {glob.id, spurious.id}
    assert set(s.outcomes.kind) == {"strict-minimum"}
    assert glob.basin_count + spurious.basin_count == N_STARTS
    # every distinct point (minima and visited saddles) is certified |grad F| <= 1e-12
    for p in s.points:
        assert np.linalg.norm(m.grad(p.x)) <= GTOL
        assert p.classification.grad_norm <= GTOL
        assert p.kind in ("strict-minimum", "strict-saddle")
    frac = s.spurious_fraction
    lo, hi = s.spurious_interval
    assert SPURIOUS_RANGE[0] <= frac <= SPURIOUS_RANGE[1]
    assert lo < frac < hi
    assert spurious.basin_fraction == frac
    assert_array_equal(spurious.basin_interval, s.spurious_interval)


def test_a_second_seed_agrees_within_the_intervals(reference):
    other = scan(_model(), N_STARTS, rng=1, lr=LR, chunk_size=N_STARTS, progress=False)
    assert len(other.minima) == 2
    assert SPURIOUS_RANGE[0] <= other.spurious_fraction <= SPURIOUS_RANGE[1]
    a, b = reference.spurious_interval, other.spurious_interval
    assert a[0] <= other.spurious_fraction <= a[1] or b[0] <= reference.spurious_fraction <= b[1]
    assert max(a[0], b[0]) <= min(a[1], b[1])                      # the intervals overlap
    # the same two orbits: losses agree to rounding
    for p, q in zip(reference.minima, other.minima):
        assert abs(p.loss - q.loss) <= 1e-12


def test_symmetric_copies_are_merged(reference):
    m = _model()
    s = reference
    for p in s.minima:
        X = s.outcomes.x[s.basin(p.id)]
        # the basin holds many different parameter vectors (permuted/rotated copies) ...
        _, first = np.unique(np.round(X, 6), axis=0, return_index=True)
        assert len(first) > 1
        # ... every one on the orbit of the node's representative
        for x in X[first[:20]]:
            assert ls.orbit_distance(m, p.x, x) <= 1e-8
    # one node per orbit: distinct nodes are far apart modulo symmetry
    for i, p in enumerate(s.points):
        for q in s.points[i + 1:]:
            assert ls.orbit_distance(m, p.x, q.x) > 1e-3


def test_results_use_the_library_vocabulary(reference):
    s = reference
    for p in s.points:
        c = p.classification
        assert (p.loss, p.grad_norm, p.lambda_min, p.kind) == (c.loss, c.grad_norm, c.lambda_min,
                                                               c.kind)
    out = s.outcomes
    assert_array_equal(out.success, out.status == ls.Status.CONVERGED)
    assert out.success.all()
    # every end is a strict minimum, certified by Newton's polish: lambda_min > 0 there
    assert np.all(out.lambda_min > 0)
    for q in (p.id for p in s.minima):
        lam = out.lambda_min[out.point == q]
        # one orbit, one spectrum: the ends differ from the representative by symmetry and by
        # |grad L| <= 1e-12 of polish, which moves lambda_min (~0.1) by ~1e-12; 1e-8 is loose
        np.testing.assert_allclose(lam, s.points[q].lambda_min, rtol=1e-8)


def test_scan_is_frozen_and_round_trips_through_json(reference):
    s = reference
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.points = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.points[0].loss = 1.0
    back = Scan.from_dict(json.loads(json.dumps(s.to_dict())))
    assert_same_scan(back, s)
    assert back.settings == s.settings and back.n_starts == s.n_starts
    assert back.path == s.path and back.wall_seconds == s.wall_seconds
    assert back.outcomes.message == s.outcomes.message
    assert_array_equal(back.outcomes.lambda_min, s.outcomes.lambda_min)
    assert back.points[1].classification.eigenvalues.tolist() == \
        s.points[1].classification.eigenvalues.tolist()
    assert sorted(back.traces) == sorted(s.traces) and s.traces
    for start, trace in s.traces.items():
        assert trace.keys() == back.traces[start].keys()
        for name, values in trace.items():
            assert_array_equal(back.traces[start][name], values, err_msg=f"{start} {name}")
    assert repr(back) == repr(s)


def test_graph_edges_go_from_saddles_to_minima(reference):
    G = reference.graph
    assert isinstance(G, nx.DiGraph)
    assert G.number_of_nodes() == len(reference.points)
    for u, v, data in G.edges(data=True):
        assert G.nodes[u]["kind"] in ("strict-saddle", "non-strict-saddle")
        assert G.nodes[v]["kind"] in ("strict-minimum", "degenerate-minimum")
        assert data["count"] == data["visits"] + data["descents"] >= 1
        assert data["descents"] <= 2
    for p in reference.saddles:
        # descending off each strict saddle along +- its negative curvature reaches minima
        assert sum(d["descents"] for _, _, d in G.out_edges(p.id, data=True)) == 2
    node = G.nodes[reference.minima[1].id]
    assert set(node) >= {"kind", "loss", "index", "nullity", "lambda_min", "basin_count",
                         "basin_fraction", "basin_low", "basin_high"}
    assert node["index"] == 0 and node["nullity"] == 0 and node["lambda_min"] > 0


def test_graph_round_trips_through_graphml_and_json(reference, tmp_path):
    G = reference.graph
    for name in ("basins.graphml", "basins.json"):
        path = tmp_path / name
        reference.export_graph(path)
        H = read_graph(path)
        assert isinstance(H, nx.DiGraph)
        assert dict(H.nodes(data=True)) == dict(G.nodes(data=True))
        assert sorted(H.edges(data=True)) == sorted(G.edges(data=True))
        assert H.graph["n_starts"] == N_STARTS
    with pytest.raises(ValueError, match=r"\.graphml.*\.json"):
        reference.export_graph(tmp_path / "basins.txt")


# ---- seeds, chunks and executors ---------------------------------------------------------------
def test_start_i_is_drawn_from_child_i_of_the_seed_sequence():
    m = _model(4)
    n = 12
    X0 = np.vstack([m.sample_init(1, rng=child)
                    for child in np.random.SeedSequence(3).spawn(n)])
    a = scan(m, n, rng=3, lr=5 / 4, progress=False)
    b = scan(m, n, rng=0, init=X0, lr=5 / 4, progress=False)
    assert_array_equal(a.outcomes.x, b.outcomes.x)
    assert_array_equal(a.outcomes.point, b.outcomes.point)


def test_chunk_sizes_give_identical_results_small():
    m = _model(4)
    one = scan(m, 60, rng=2, lr=5 / 4, chunk_size=1, progress=False)
    whole = scan(m, 60, rng=2, lr=5 / 4, chunk_size=60, progress=False)
    assert_same_scan(one, whole)


def test_chunk_size_7_gives_identical_results(reference):
    s = scan(_model(), N_STARTS, rng=0, lr=LR, chunk_size=7, progress=False)
    assert_same_scan(s, reference)


@pytest.mark.parametrize("n, size", [(500, 62), (500, 128), (10, 3), (7, 2), (3, 128), (1, 1)])
def test_executor_chunks_partition_the_starts_with_a_finer_tail(n, size):
    """Tasks for an executor: every pending start once, in order, no chunk above chunk_size,
    equal sizes (within one) before the tail, and the tail's chunks no larger than those."""
    from landscape.scan.driver import plan_chunks
    pending = np.arange(n) * 3 + 1
    chunks = plan_chunks(pending, size, parallel=True)
    assert_array_equal(np.concatenate(chunks), pending)
    sizes = [len(c) for c in chunks]
    assert max(sizes) <= size and min(sizes) >= 1
    m = -(-n // size)
    head = sizes[:max(m - 2, 0)]
    if head:
        assert max(head) - min(head) <= 1
        assert max(sizes[len(head):]) <= min(head)
    if m >= 2:                # the last two chunks' starts are spread over more tasks
        assert len(chunks) > m
    serial = plan_chunks(pending, size, parallel=False)
    assert [len(c) for c in serial[:-1]] == [size] * (len(serial) - 1)


def test_process_pool_gives_identical_results(reference):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        s = scan(_model(), N_STARTS, rng=0, lr=LR, chunk_size=64, executor=pool,
                 progress=False)
    assert_same_scan(s, reference)


def test_dask_cluster_gives_identical_results(reference):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed: pip install "
        "'landscape[distributed]' to run the Dask executor test")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        s = scan(_model(), N_STARTS, rng=0, lr=LR, chunk_size=100, executor=client,
                 progress=False)
    assert_same_scan(s, reference)


# ---- the store: resumption and refusals ---------------------------------------------------
def test_a_scan_killed_mid_way_resumes_to_the_same_result(reference, tmp_path, monkeypatch):
    path = tmp_path / "run.db"
    code = textwrap.dedent(f"""
        import numpy as np, landscape as ls
        from landscape.scan import scan
        m = ls.ReluTeacherStudent(teacher=np.eye({K}), n_students={K})
        scan(m, {N_STARTS}, rng=0, lr={LR!r}, store={str(path)!r}, chunk_size=10,
             progress=False)
    """)
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=60) as conn:
                        done = conn.execute("SELECT COUNT(*) FROM starts").fetchone()[0]
                    conn.close()
                except sqlite3.DatabaseError:          # the schema is still being created
                    done = 0
            if done >= 30:                              # three chunks committed
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the scan ended before it could be killed: " + \
            proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with Store.open(path) as st:
        finished = st.finished_starts()
        assert st.finalized is None
    assert 30 <= len(finished) < N_STARTS and len(finished) % 10 == 0
    with pytest.raises(StoreError, match="unfinished scan"):
        Scan.load(path)

    computed = []
    run_chunk = pipeline.run_chunk

    def counting(model, config, starts, X0=None, scan_id=None):
        computed.extend(int(s) for s in starts)
        return run_chunk(model, config, starts, X0, scan_id)

    monkeypatch.setattr(pipeline, "run_chunk", counting)
    resumed = scan(_model(), N_STARTS, rng=0, lr=LR, store=path, chunk_size=64, progress=False)
    assert sorted(computed) == sorted(set(range(N_STARTS)) - set(finished.tolist()))
    assert_same_scan(resumed, reference)
    assert_same_scan(Scan.load(path), reference)
    # a finished store is reloaded, not recomputed
    computed.clear()
    again = scan(_model(), N_STARTS, rng=None, lr=LR, store=path, progress=False)
    assert computed == []
    assert_same_scan(again, reference)


def test_scan_load_resumes_with_a_model(tmp_path, monkeypatch):
    m = _model(4)
    path = tmp_path / "run.db"
    full = scan(m, 30, rng=5, lr=5 / 4, chunk_size=10, progress=False)
    run_chunk = pipeline.run_chunk

    def crash_on_third(model, config, starts, X0=None, scan_id=None):
        if starts[0] >= 20:
            raise KeyboardInterrupt("interrupted")
        return run_chunk(model, config, starts, X0, scan_id)

    monkeypatch.setattr(pipeline, "run_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        scan(m, 30, rng=5, lr=5 / 4, store=path, chunk_size=10, progress=False)
    monkeypatch.setattr(pipeline, "run_chunk", run_chunk)
    with pytest.raises(StoreError, match="20 of 30 starts"):
        Scan.load(path)
    assert_same_scan(Scan.load(path, m, progress=False), full)
    assert_same_scan(Scan.load(path), full)
    assert Scan.load(path).path == str(path)


def test_resume_plan_reads_the_stored_settings_and_resume_scan_uses_them(tmp_path,
                                                                          monkeypatch):
    m = _model(4)
    path = tmp_path / "run.db"
    full = scan(m, 30, rng=5, lr=5 / 4, chunk_size=10, progress=False)
    run_chunk = pipeline.run_chunk

    def crash_on_third(model, config, starts, X0=None, scan_id=None):
        if starts[0] >= 20:
            raise KeyboardInterrupt("interrupted")
        return run_chunk(model, config, starts, X0, scan_id)

    monkeypatch.setattr(pipeline, "run_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        scan(m, 30, rng=5, lr=5 / 4, store=path, chunk_size=10, progress=False)
    monkeypatch.setattr(pipeline, "run_chunk", run_chunk)

    plan = resume_plan(path, lr=1.0, gtol=GTOL, rng=5, init=None)
    assert (plan.n_starts, plan.n_finished, plan.min_starts) == (30, 20, 20)
    assert not plan.is_complete and not plan.explicit_init
    assert plan.conflicts == {"lr": 5 / 4}                        # gtol and the seed agree
    assert plan.options == dict(rng=None, init=0.5, lr=5 / 4, gtol=GTOL, coarse_gtol=1e-3,
                                visit_gtol=1e-4, maxiter=100_000, loss_rtol=1e-9, xtol=1e-6,
                                saddle_step=1e-3)                 # init: 1/sqrt(d), d = 4
    assert resume_plan(path, rng=6).conflicts == {"rng": {"entropy": 5, "spawn_key": []}}
    with pytest.raises(TypeError, match=r"unknown settings \['step'\]"):
        resume_plan(path, step=1.0)
    with pytest.raises(ValueError, match=r"n_starts = 19: store .* holds starts 0\.\.19; pass "
                                         r"n_starts >= 20"):
        resume_scan(m, path, n_starts=19, progress=False)
    with pytest.raises(StoreError, match="model.probe: stored"):           # another model
        resume_scan(_model(3), path, progress=False)

    assert_same_scan(resume_scan(m, path, progress=False), full)
    assert resume_plan(path).is_complete
    assert_same_scan(Scan.load(path), full)
    longer = resume_scan(m, path, n_starts=35, chunk_size=4, progress=False)
    assert_same_scan(longer, scan(m, 35, rng=5, lr=5 / 4, progress=False))


def test_a_scan_from_explicit_starts_is_resumed_only_with_them(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    X0 = m.sample_init(6, rng=0)
    first = scan(m, 6, rng=0, init=X0, lr=5 / 4, store=path, progress=False)
    plan = resume_plan(path)
    assert plan.explicit_init and "init" not in plan.options
    with pytest.raises(StoreError, match=r"explicit initial points, which are not stored; "
                                         r"resume it with ls\.scan\(model, n_starts, init=X0"):
        resume_scan(m, path, progress=False)
    assert_same_scan(scan(m, 6, rng=0, init=X0, lr=5 / 4, store=path, progress=False), first)


def test_a_store_with_other_settings_is_refused(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    scan(m, 10, rng=0, lr=5 / 4, store=path, progress=False)
    with pytest.raises(StoreError, match=r"lr: stored 1\.25, given 1") as err:
        scan(m, 10, rng=0, lr=1.0, store=path, progress=False)
    assert str(path) in str(err.value) and "new store path" in str(err.value)
    with pytest.raises(StoreError, match="seed.entropy"):
        scan(m, 10, rng=1, lr=5 / 4, store=path, progress=False)
    teacher = ls.ReluTeacherStudent(teacher=2 * np.eye(4), n_students=4)
    with pytest.raises(StoreError, match="model.probe"):
        scan(teacher, 10, rng=0, lr=5 / 4, store=path, progress=False)
    with pytest.raises(StoreError, match="model"):
        scan(_model(3), 10, rng=0, lr=5 / 4, store=path, progress=False)
    # more starts extend the same scan; the first ten are not recomputed
    longer = scan(m, 15, rng=0, lr=5 / 4, store=path, progress=False)
    assert longer.n_starts == 15
    assert_same_scan(longer, scan(m, 15, rng=0, lr=5 / 4, progress=False))
    with pytest.raises(StoreError, match="n_starts >= 15"):
        scan(m, 12, rng=0, lr=5 / 4, store=path, progress=False)


def test_a_corrupt_store_is_refused(tmp_path):
    path = tmp_path / "run.db"
    path.write_bytes(b"definitely not sqlite" * 50)
    with pytest.raises(StoreError, match="not an SQLite file"):
        scan(_model(3), 5, rng=0, lr=5 / 3, store=path, progress=False)
    with pytest.raises(StoreError, match="not an SQLite file"):
        Scan.load(path)


def _replace_x(path, table, key, value, x):
    """Rewrite a stored x *and* its checksum: a consistent file that holds a wrong point."""
    data, dtype, shape, checksum = store_module._pack(x)
    with sqlite3.connect(path) as conn:
        n = conn.execute(f"UPDATE {table} SET x = ?, x_dtype = ?, x_shape = ?, x_checksum = ? "
                         f"WHERE {key} = ?", (data, dtype, shape, checksum, value)).rowcount
    conn.close()
    assert n == 1


def test_verify_catches_a_consistently_replaced_point(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    s = scan(m, 10, rng=0, lr=5 / 4, store=path, progress=False)
    assert_same_scan(Scan.load(path, m, verify=True), s)         # an intact store verifies
    wrong = s.points[0].x + 0.05 * np.random.default_rng(0).standard_normal(m.n_params)
    assert np.linalg.norm(m.grad(wrong)) > 1e-3
    _replace_x(path, "points", "id", 0, wrong)
    before = path.read_bytes()
    loaded = Scan.load(path)                                      # checksums cannot see it...
    assert_array_equal(loaded.points[0].x, wrong)
    assert loaded.points[0].classification.grad_norm <= GTOL      # ...and it claims certified
    with pytest.raises(StoreError, match=r"point 0 \(table points, row id 0\) has \|grad L\| = "
                                         r"\S+ when re-evaluated") as err:
        Scan.load(path, m, verify=True)
    assert str(path) in str(err.value) and "10 x gtol = 1e-11" in str(err.value)
    assert "new store" in str(err.value)
    assert path.read_bytes() == before

    _replace_x(path, "points", "id", 0, s.points[0].x)           # repaired; now an end point
    end = int(np.flatnonzero(s.outcomes.point >= 0)[3])
    _replace_x(path, "starts", "start", int(s.outcomes.start[end]), wrong)
    with pytest.raises(StoreError, match=f"the end point of start {s.outcomes.start[end]} "
                                         r"\(table starts, row start"):
        Scan.load(path, m, verify=True)


def test_verify_refuses_a_point_replaced_by_one_where_the_gradient_overflows(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    s = scan(m, 4, rng=0, lr=5 / 4, store=path, progress=False)
    _replace_x(path, "points", "id", 0, s.points[0].x * 1e300)
    with pytest.raises(StoreError, match=r"point 0 \(table points, row id 0\) has "):
        Scan.load(path, m, verify=True)


def test_verify_needs_the_model_the_scan_was_run_with(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    scan(m, 5, rng=0, lr=5 / 4, store=path, progress=False)
    with pytest.raises(TypeError, match=r"verify=True .* needs one: pass Scan\.load\(path, "
                                        r"model, verify=True\)"):
        Scan.load(path, verify=True)
    with pytest.raises(TypeError, match="verify must be True or False"):
        Scan.load(path, m, verify="yes")
    other = ls.ReluTeacherStudent(teacher=2 * np.eye(4), n_students=4)
    with pytest.raises(ValueError, match="is not the model scanned into store"):
        Scan.load(path, other, verify=True)


def test_verify_checks_an_unfinished_store_before_resuming_it(tmp_path, monkeypatch):
    m = _model(4)
    path = tmp_path / "run.db"
    run_chunk = pipeline.run_chunk

    def stop_at_second(model, config, starts, X0=None, scan_id=None):
        if starts[0] >= 5:
            raise KeyboardInterrupt("interrupted")
        return run_chunk(model, config, starts, X0, scan_id)

    monkeypatch.setattr(pipeline, "run_chunk", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        scan(m, 10, rng=0, lr=5 / 4, store=path, chunk_size=5, progress=False)
    monkeypatch.setattr(pipeline, "run_chunk", run_chunk)
    with Store.open(path) as st:
        x = st.read_outcomes(m.n_params).x[2]
    _replace_x(path, "starts", "start", 2, x + 0.05)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"the end point of start 2 \(table starts, row start 2\)"):
        Scan.load(path, m, verify=True, progress=False)
    assert path.read_bytes() == before                            # nothing resumed


def test_a_damaged_store_is_not_resumed(tmp_path):
    m = _model(4)
    path = tmp_path / "run.db"
    scan(m, 6, rng=0, lr=5 / 4, store=path, progress=False)
    with sqlite3.connect(path) as conn:
        (blob,) = conn.execute("SELECT x FROM starts WHERE start = 4").fetchone()
        conn.execute("UPDATE starts SET x = ? WHERE start = 4",
                     (blob[:20] + bytes([blob[20] ^ 4]) + blob[21:],))
    conn.close()
    before = path.read_bytes()
    for extend in (6, 12):             # reloading the finished scan, and extending it
        with pytest.raises(StoreError, match="table starts, row start 4: array x fails its "
                                             "checksum; the file is damaged"):
            scan(m, extend, rng=0, lr=5 / 4, store=path, progress=False)
    assert path.read_bytes() == before                            # nothing computed or written


# ---- what descent ends at -----------------------------------------------------------------
def test_a_descent_ending_at_a_saddle_is_a_saddle():
    """F = x^2 + y^3: GD from y = 0 converges to the origin, a non-strict saddle."""
    m = ls.AutogradModel(lambda z: z[0] ** 2 + z[1] ** 3, 2)
    s = scan(m, 2, rng=0, init=np.array([[1.0, 0.0], [0.5, 0.0]]), lr=0.25, progress=False)
    assert s.outcomes.kind == ["non-strict-saddle", "non-strict-saddle"]
    assert s.minima == [] and s.spurious_count == 0
    (p,) = s.points
    assert p.is_saddle and not p.is_minimum and p.basin_count == 2
    assert s.graph.number_of_edges() == 0       # its witness direction descends without end


# ---- divergence (issue 15, item 2) ----------------------------------------------------------
def test_a_diverging_step_stops_the_scan_naming_lr_and_the_stable_step(tmp_path):
    m = _model(4)
    store = tmp_path / "d.db"
    with pytest.raises(ls.DivergenceError, match=r"diverged from 5 of the 5 starts run \(of 5\) "
                       r"with lr = 50.*2/lambda_max = .*pass a smaller lr") as info:
        scan(m, 5, rng=0, lr=50.0, maxiter=2000, store=store, progress=False)
    exc = info.value
    # the estimate is 2 / lambda_max over the first starts (all 5 here)
    X0 = scan_module.initial_points(m, {"seed": scan_module.seed_settings(0),
                                        "init": {"kind": "normal", "scale": 0.5}}, range(5))
    lam = max(np.linalg.eigvalsh(m.hess(x))[-1] for x in X0)
    np.testing.assert_allclose(exc.lr_stable, 2 / lam, rtol=1e-10)
    assert f"{2 / lam:.4g}" in str(exc)
    assert (exc.n_diverged, exc.n_run, exc.n_starts, exc.lr) == (5, 5, 5, 50.0)
    # the store it created held no start: removed, so the same store can take another lr
    assert exc.store_removed and not store.exists() and not (tmp_path / "d.db.lock").exists()
    s = scan(m, 5, rng=0, lr=5 / 4, store=store, progress=False)
    assert [p.kind for p in s.points] == ["strict-minimum"] and s.unresolved_count == 0


def _steep_well():
    """x^4/4 + x^2/2: curvature 1 + 3x^2, so lr = 0.1 diverges from |x0| = 10, not from 1."""
    import autograd.numpy as anp
    return ls.AutogradModel(lambda x: anp.sum(x ** 4 / 4 + x ** 2 / 2), 1, optimal_loss=0.0)


def test_a_few_diverged_starts_are_reported_and_more_stop_the_scan(tmp_path):
    m = _steep_well()
    X0 = np.where(np.arange(100) % 2, 1.0, -1.0)[:, None]
    X0[7] = 10.0                                   # 1 of 100: within the 1% tolerated
    with pytest.warns(ls.LandscapeWarning, match="1 of 100 starts diverged with lr = 0.1"):
        s = scan(m, 100, rng=0, init=X0, lr=0.1, chunk_size=25, progress=False)
    assert s.outcomes.status[7] == ls.Status.DIVERGED and s.outcomes.point[7] == -1
    assert "diverged" in s.outcomes.message[7]
    (p,) = s.points                               # the diverged start is no point
    assert p.kind == "strict-minimum" and p.basin_count == 99
    assert s.unresolved_ends == {"diverged": 1} and s.spurious_count == 0
    # 2 of 100 stop the scan at the chunk that holds the second; earlier chunks stay stored
    X0[60] = -10.0
    store = tmp_path / "few.db"
    with pytest.raises(ls.DivergenceError, match=r"diverged from 2 of the 75 starts run \(of "
                       r"100\).*Store .*few.db keeps the 50 starts finished with lr = 0.1; "
                       "scan with another lr into a new store") as info:
        scan(m, 100, rng=0, init=X0, lr=0.1, chunk_size=25, store=store, progress=False)
    assert not info.value.store_removed
    with Store.open(store) as st:
        assert st.n_finished() == 50


# ---- ends at no certified minimum (issue 15, item 12) ---------------------------------------
def test_ends_at_no_certified_minimum_are_counted_beside_the_spurious_fraction():
    # every end is a non-strict saddle: no spurious minimum, yet nothing is resolved
    m = ls.AutogradModel(lambda z: z[0] ** 2 + z[1] ** 3, 2)
    s = scan(m, 2, rng=0, init=np.array([[1.0, 0.0], [0.5, 0.0]]), lr=0.25, progress=False)
    assert s.spurious_fraction == 0
    assert s.unresolved_ends == {"non-strict-saddle": 2} and s.unresolved_count == 2
    assert s.unresolved_fraction == 1
    assert_array_equal(s.unresolved_interval, ls.wilson_interval(2, 2))
    assert "unresolved_fraction=1 " in repr(s)
    # starts out of steps end at no point: not converged
    s = scan(_model(4), 20, rng=0, lr=5 / 4, maxiter=30, progress=False)
    ends = s.unresolved_ends
    assert set(ends) == {"not-converged"}
    assert ends["not-converged"] == int(np.sum(s.outcomes.point < 0)) > 0
    at_minima = sum(p.basin_count for p in s.minima)
    assert at_minima + s.unresolved_count == s.n_starts
    assert s.unresolved_fraction == ends["not-converged"] / 20
    # a scan whose ends are all minima says so, and its repr stays as it was
    s = scan(_model(4), 20, rng=0, lr=5 / 4, progress=False)
    assert s.unresolved_ends == {} and s.unresolved_fraction == 0
    assert "unresolved" not in repr(s)


def test_bad_arguments():
    m = _model(3)
    with pytest.raises(ValueError, match="n_starts"):
        scan(m, 0, rng=0, lr=1.0, progress=False)
    with pytest.raises(TypeError, match="executor"):
        scan(m, 2, rng=0, lr=1.0, executor="dask", progress=False)
    with pytest.raises(ValueError, match="init"):
        scan(m, 2, rng=0, lr=1.0, init=np.zeros((3, m.n_params)), progress=False)
    with pytest.raises(TypeError, match="rng"):
        scan(m, 2, rng="zero", lr=1.0, progress=False)
    with pytest.raises(ValueError, match="lr"):
        scan(m, 2, rng=0, lr=-1.0, progress=False)
    with pytest.raises(TypeError, match="progress"):
        scan(m, 2, rng=0, lr=1.0, progress="yes")


def test_default_step_size_and_progress_bar(capsys):
    m = _model(3)
    s = scan(m, 6, rng=0, progress=True)
    assert 0 < s.settings["lr"] < 2
    assert len(s.minima) >= 1
    assert "scan" in capsys.readouterr().err


def test_chunks_of_one_scan_share_their_classifications(monkeypatch):
    """A chunk's copy of a point an earlier chunk classified (and nearer the non-smooth set than
    that member) takes its verdict: fewer full classifications, the same scan."""
    m = _model(4)
    calls = []
    real = pipeline.classify
    monkeypatch.setattr(pipeline, "classify", lambda *a, **k: calls.append(1) or real(*a, **k))
    whole = scan(m, 60, rng=2, lr=5 / 4, chunk_size=60, progress=False)
    n_whole = len(calls)
    calls.clear()
    shared = scan(m, 60, rng=2, lr=5 / 4, chunk_size=10, progress=False)
    n_shared = len(calls)
    calls.clear()
    # the same six chunks, each on its own (no scan id: nothing shared)
    X0 = np.vstack([m.sample_init(1, rng=child) for child in np.random.SeedSequence(2).spawn(60)])
    settings = dict(lr=5 / 4, gtol=1e-12, coarse_gtol=1e-3, visit_gtol=1e-4, maxiter=100_000)
    for c in range(6):
        starts = np.arange(10 * c, 10 * c + 10)
        pipeline.run_chunk(m, settings, starts, X0[starts])
    n_alone = len(calls)
    assert_same_scan(shared, whole)
    assert n_whole <= n_shared < n_alone, (n_whole, n_shared, n_alone)
