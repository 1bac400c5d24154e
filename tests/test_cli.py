"""The ``landscape`` command: end to end in subprocesses, and in-process for the details."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import landscape as ls
from landscape.cli import main

ROOT = Path(__file__).resolve().parents[1]
K = 4                                   # V = I_4, k = 4: small and quick
MODEL_FLAGS = ["--teacher", f"identity:{K}", "--students", str(K)]


def run_cli(*args, cwd, timeout=300):
    """Run ``python -m landscape.cli`` in a subprocess on this checkout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "landscape.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


# ---- basics ----------------------------------------------------------------------------------
def test_no_arguments_prints_help_and_succeeds(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: landscape" in out
    for command in ("scan", "classify", "convexity", "report", "study"):
        assert command in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert ls.__version__ in capsys.readouterr().out


# ---- end to end ------------------------------------------------------------------------------
def test_scan_then_report_end_to_end(tmp_path):
    r = run_cli("scan", *MODEL_FLAGS, "--starts", 24, "--seed", 3, "--lr", 5 / K,
                "--store", "run.db", "--report", "report", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "strict-minimum" in r.stdout
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["n_starts"] == 24
    assert data["model"] == f"ReluTeacherStudent(teacher=identity:{K}, n_students={K})"
    assert sum(p["basin_count"] for p in data["points"]) == 24
    for name in ("index.html", "graph.graphml", "spectra.png", "basin_graph.png"):
        assert (tmp_path / "report" / name).is_file(), name

    # the report rebuilt from the store says the same
    r2 = run_cli("report", "run.db", "-o", "again", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    assert json.loads((tmp_path / "again" / "report.json").read_text()) == data

    # the scan in the store is the library's scan with the same settings
    s = ls.scan(ls.ReluTeacherStudent(teacher=np.eye(K), n_students=K), 24, rng=3,
                lr=5 / K, progress=False)
    stored = ls.Scan.load(tmp_path / "run.db")
    np.testing.assert_array_equal(stored.outcomes.point, s.outcomes.point)
    np.testing.assert_array_equal(stored.outcomes.loss, s.outcomes.loss)


def test_classify_a_npy_point(tmp_path):
    np.save(tmp_path / "w.npy", np.eye(K))                     # the global minimum W = I
    r = run_cli("classify", "w.npy", *MODEL_FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "strict-minimum" in r.stdout
    r = run_cli("classify", "w.npy", *MODEL_FLAGS, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    c = ls.Classification.from_dict(json.loads(r.stdout))
    assert c.kind == "strict-minimum" and c.index == 0 and c.nullity == 0
    # DESIGN.md reference value: lambda_min at W = V = I is 1/4 - 1/(2 pi)
    np.testing.assert_allclose(c.lambda_min, 0.25 - 1 / (2 * np.pi), rtol=1e-10)


def test_bad_flag_and_missing_file_are_bad_usage(tmp_path):
    r = run_cli("scan", "--no-such-flag", cwd=tmp_path)
    assert r.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in r.stderr
    r = run_cli("classify", "missing.npy", *MODEL_FLAGS, cwd=tmp_path)
    assert r.returncode == 2
    assert "no such file 'missing.npy'" in r.stderr
    r = run_cli("report", "missing.db", cwd=tmp_path)
    assert r.returncode == 2
    assert "missing.db" in r.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("args, message", [
    (["scan", "--teacher", "foo:3", "--students", "2"], "--teacher 'foo:3' is not understood"),
    (["scan", "--teacher", "identity:3"], "--students is required"),
    (["scan", "--teacher", "identity:3", "--students", "0"], "n_students must be >= 1"),
    (["scan", "--teacher", "identity:3", "--students", "2", "--lr", "-1"], "lr"),
    (["scan", "--teacher", "random:3,2", "--students", "2"], "random:N,D,SEED"),
    (["scan", "--model", "two-layer", "--students", "2"], "exactly one target"),
    (["scan", "--model", "nope", "--students", "2"], "teacher-student or two-layer"),
    (["scan", "--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
    (["convexity", "--tests", "opsc", "bogus"], "bogus"),
    (["classify"], "give a point"),
    (["study"], "give a study NAME or --list"),
    (["study", "no-such-study"], "unknown study 'no-such-study'"),
])
def test_bad_usage_says_what_to_fix(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.db"))                      # nothing was created


def test_wrong_point_size_is_bad_usage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.save("w.npy", np.eye(K + 1))
    assert main(["classify", "w.npy", *MODEL_FLAGS]) == 2
    assert f"has {K * K} parameters" in capsys.readouterr().err


def test_a_store_of_another_model_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "4", "--lr", "1", "-q"]) == 0
    before = (tmp_path / "scan.db").read_bytes()
    assert main(["scan", "--teacher", "identity:3", "--students", "3", "--starts", "4",
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "holds a scan of ReluTeacherStudent(teacher=identity:4" in err
    assert (tmp_path / "scan.db").read_bytes() == before        # the store is untouched


# ---- configuration files -------------------------------------------------------------------
def test_config_file_sets_options_and_flags_override_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("run.toml").write_text(
        'teacher = "identity:4"\nn_students = 4\n[scan]\nn_starts = 6\nrng = 1\nlr = 1.25\n'
        'store = "cfg.db"\n')
    assert main(["scan", "--config", "run.toml", "--starts", "8", "-q"]) == 0
    s = ls.Scan.load("cfg.db")
    assert s.n_starts == 8                                       # the flag wins
    assert s.settings["lr"] == 1.25                              # from the file
    assert s.annotations["config"]["n_starts"] == 6             # the file is recorded
    capsys.readouterr()
    Path("bad.toml").write_text("n_strats = 6\n")
    assert main(["scan", "--config", "bad.toml", *MODEL_FLAGS]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) n_strats" in err and "n_starts" in err
    Path("typed.toml").write_text('n_starts = "many"\n')
    assert main(["scan", "--config", "typed.toml", *MODEL_FLAGS]) == 2
    assert "n_starts = 'many' is not a valid int" in capsys.readouterr().err
    assert main(["scan", "--config", "absent.toml"]) == 2


# ---- resuming --------------------------------------------------------------------------------
def _finished(db):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM starts").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_scan_interrupted_with_sigint_resumes_to_the_same_result(tmp_path):
    n, k = 300, 6
    flags = ["--teacher", f"identity:{k}", "--students", k, "--starts", n, "--seed", 5,
             "--lr", 5 / k, "--chunk-size", 4, "--store", "run.db", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "landscape.cli", "scan", *map(str, flags)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _finished(tmp_path / "run.db") < 8 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    done = _finished(tmp_path / "run.db")
    assert 8 <= done < n

    r = run_cli("scan", *flags, cwd=tmp_path)                    # the same command resumes
    assert r.returncode == 0, r.stderr
    resumed = ls.Scan.load(tmp_path / "run.db")
    whole = ls.scan(ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k), n, rng=5,
                    lr=5 / k, progress=False)
    np.testing.assert_array_equal(resumed.outcomes.point, whole.outcomes.point)
    np.testing.assert_array_equal(resumed.outcomes.x, whole.outcomes.x)
    assert [(p.kind, p.basin_count) for p in resumed.points] == \
        [(p.kind, p.basin_count) for p in whole.points]


def test_resume_without_model_flags_uses_the_stored_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "5", "--seed", "2", "-q"]) == 0
    assert main(["scan", "--starts", "9", "-q"]) == 0           # extends the stored scan
    s = ls.Scan.load("scan.db")
    assert s.n_starts == 9
    whole = ls.scan(ls.ReluTeacherStudent(teacher=np.eye(K), n_students=K), 9, rng=2,
                    lr=s.settings["lr"], progress=False)
    np.testing.assert_array_equal(s.outcomes.x, whole.outcomes.x)


def test_workers_give_the_in_process_result(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = [*MODEL_FLAGS, "--starts", "12", "--seed", "4", "--lr", "1.25",
              "--chunk-size", "3", "-q"]
    assert main(["scan", *common, "--store", "a.db"]) == 0
    assert main(["scan", *common, "--store", "b.db", "--workers", "2"]) == 0
    a, b = ls.Scan.load("a.db"), ls.Scan.load("b.db")
    np.testing.assert_array_equal(a.outcomes.x, b.outcomes.x)
    np.testing.assert_array_equal(a.outcomes.point, b.outcomes.point)


# ---- one writer per store ---------------------------------------------------------------------
def test_a_second_scan_of_a_store_in_use_exits_1_naming_the_writer(tmp_path):
    flags = ["--teacher", "identity:8", "--students", 8, "--starts", 100_000, "--lr", 5 / 8,
             "--chunk-size", 4, "--store", "c1.db", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    first = subprocess.Popen([sys.executable, "-m", "landscape.cli", "scan", *map(str, flags)],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while _finished(tmp_path / "c1.db") < 4 and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        assert (tmp_path / "c1.db.lock").read_text().strip() == str(first.pid)
        for model in (flags[:4], ["--teacher", "identity:4", "--students", 4]):
            second = run_cli("scan", *model, *flags[4:], cwd=tmp_path)
            assert second.returncode == 1, second.stderr
            assert (f"landscape: failed: store c1.db is in use by process {first.pid} (another "
                    "scan is writing it); wait for it to finish or use another --store") \
                in second.stderr
            assert "UNIQUE" not in second.stderr and "Traceback" not in second.stderr
            assert first.poll() is None                            # the first scan goes on
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert not (tmp_path / "c1.db.lock").exists()
    with ls.Store.open(tmp_path / "c1.db") as st:     # annotated by the writer, not the loser
        assert st.annotations()["model"]["spec"]["teacher"] == "identity:8"
        st.check_arrays()


def test_scan_classify_and_report_beside_a_writer(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "6", "--lr", "1.25", "-q"]) == 0
    capsys.readouterr()
    with ls.Store.open("scan.db", write=True):        # another writer holds the store
        before = Path("scan.db").read_bytes()
        assert main(["scan", *MODEL_FLAGS, "--starts", "8", "--lr", "1.25", "-q"]) == 1
        assert f"is in use by process {os.getpid()}" in capsys.readouterr().err
        assert main(["classify", "--store", "scan.db"]) == 0   # readers need no lock
        assert "strict-minimum" in capsys.readouterr().out
        assert main(["report", "scan.db", "-o", "rep"]) == 0
        assert Path("rep/index.html").is_file()
        assert Path("scan.db").read_bytes() == before
    assert main(["scan", *MODEL_FLAGS, "--starts", "8", "--lr", "1.25", "-q"]) == 0


# ---- classify, convexity, report, study in-process -------------------------------------------
def test_classify_lists_a_store_and_json_round_trips(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "6", "--lr", "1.25", "-q"]) == 0
    capsys.readouterr()
    assert main(["classify", "--store", "scan.db"]) == 0
    out = capsys.readouterr().out
    assert "strict-minimum" in out and "basin" in out
    assert main(["classify", "--store", "scan.db", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    s = ls.Scan.load("scan.db")
    assert [r["id"] for r in rows] == [p.id for p in s.points]
    c = ls.Classification.from_dict(rows[0]["classification"])
    assert c.kind == s.points[0].kind
    np.testing.assert_array_equal(c.eigenvalues, s.points[0].classification.eigenvalues)


def test_classify_two_layer_model_saddle(tmp_path, monkeypatch, capsys):
    """a = 0 and w orthogonal to beta: a strict saddle of the two-layer linear-target loss."""
    monkeypatch.chdir(tmp_path)
    a, W = np.zeros(1), np.array([[0.0, 1.0]])
    np.save("x.npy", np.concatenate([a, W.ravel()]))
    assert main(["classify", "x.npy", "--model", "two-layer", "--beta", "e1:2",
                 "--students", "1", "--json"]) == 0
    c = ls.Classification.from_dict(json.loads(capsys.readouterr().out))
    m = ls.TwoLayerReLU(n_hidden=1, target=ls.LinearTarget(np.array([1.0, 0.0])))
    assert c.kind == ls.classify(m, m.flatten((a, W))).kind == "strict-saddle"


def test_convexity_at_a_store_point_is_saved_and_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "4", "--lr", "1.25", "-q"]) == 0
    assert main(["convexity", "--store", "scan.db", "--directions", "8", "--n-radii", "3",
                 "--tests", "opsc", "pl", "-o", "cvx.json"]) == 0
    out = capsys.readouterr().out
    assert "opsc" in out and "pl" in out
    saved = [ls.DirectionalTest.from_dict(d) for d in json.loads(Path("cvx.json").read_text())]
    assert [t.kind for t in saved] == ["opsc", "pl"]
    assert all(t.fraction == 1.0 for t in saved)   # V = I, k = n: strongly convex at W = I
    s = ls.Scan.load("scan.db")
    assert [d["fields"]["kind"] if "fields" in d else d["kind"]
            for d in s.annotations["convexity"]] == ["opsc", "pl"]
    assert main(["report", "scan.db", "-o", "rep"]) == 0
    html = Path("rep/index.html").read_text()
    assert 'id="convexity"' in html
    assert json.loads(Path("rep/report.json").read_text())["convexity"][0]["kind"] == "opsc"


def test_study_list_names_every_study_folder(capsys):
    assert main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    folders = sorted(p.parent.name for p in (ROOT / "studies").glob("*/study.py"))
    listed = sorted(line.split()[0] for line in out.splitlines() if line.strip())
    assert listed == folders
