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
    (["scan", "--teacher", "identity:3", "--students", "0"],
     "--students 0: the number of student (hidden) neurons must be a whole number >= 1"),
    (["scan", "--teacher", "identity:3", "--students", "2", "--lr", "-1"],
     "--lr -1: the gradient-descent step size must be a finite number > 0"),
    (["scan", "--teacher", "random:3,2", "--students", "2"], "random:N,D,SEED"),
    (["scan", "--model", "two-layer", "--students", "2"], "exactly one target"),
    (["scan", "--model", "nope", "--students", "2"], "teacher-student or two-layer"),
    (["scan", "--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with"),
    (["convexity", "--tests", "opsc", "bogus"], "bogus"),
    (["classify"], "give a point"),
    (["study"], "give a study NAME or --list"),
    (["study", "no-such-study"], "unknown study 'no-such-study'"),
    # every option is checked on every path, naming its flag (issue 15, items 4 and 7)
    (["classify", "--store", "X", "--gtol", "-1"],
     "--gtol -1: the gradient tolerance must be a finite number > 0"),
    (["classify", "w.npy", *MODEL_FLAGS, "--gtol", "inf"], "--gtol inf"),
    (["scan", *MODEL_FLAGS, "--starts", "0"], "--starts 0: the number of starts must be"),
    (["scan", *MODEL_FLAGS, "--seed", "-1"], "--seed -1: the random seed must be"),
    (["scan", *MODEL_FLAGS, "--init", "0"], "--init 0: the standard deviation"),
    (["scan", *MODEL_FLAGS, "--maxiter", "0"], "--maxiter 0: the gradient steps per start"),
    (["scan", *MODEL_FLAGS, "--chunk-size", "0"], "--chunk-size 0: the starts per task"),
    (["scan", *MODEL_FLAGS, "--workers", "0"], "--workers 0: the number of processes"),
    (["scan", *MODEL_FLAGS, "--gtol", "nan"], "--gtol nan"),
    (["convexity", "--store", "X", "--directions", "0"], "--directions 0: the number of random"),
    (["convexity", "--store", "X", "--n-radii", "0"], "--n-radii 0: the number of radii"),
    (["convexity", "--store", "X", "--point-id", "-1"], "--point-id -1: the id of a critical"),
])
def test_bad_usage_says_what_to_fix(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*.db"))                      # nothing was created


def test_config_values_are_checked_like_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("c.toml").write_text("[classify]\ngtol = -1.0\n")
    assert main(["classify", "--store", "X", "--config", "c.toml"]) == 2
    assert "--gtol -1 (key gtol of --config c.toml): the gradient tolerance must be a finite " \
        "number > 0" in capsys.readouterr().err
    Path("s.toml").write_text("n_starts = true\nstore = 3\n")
    assert main(["scan", *MODEL_FLAGS, "--config", "s.toml"]) == 2
    assert "store = 3 must be a string" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.db"))


def test_a_bad_point_or_teacher_file_is_bad_usage_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    W = np.eye(K)
    W[1, 2] = np.nan
    np.save("nan.npy", W)
    assert main(["classify", "nan.npy", *MODEL_FLAGS]) == 2
    assert "POINT nan.npy: x must be finite" in capsys.readouterr().err
    np.save("huge.npy", np.eye(K) * 1e300)                # a teacher the loss overflows on
    assert main(["classify", "nan.npy", "--teacher", "huge.npy", "--students", str(K)]) == 2
    assert "--teacher (array from file): teacher" in capsys.readouterr().err


def test_an_internal_failure_exits_1_not_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(ls, "scan", broken)
    assert main(["scan", *MODEL_FLAGS, "--starts", "4", "-q"]) == 1
    err = capsys.readouterr().err
    assert "landscape: failed (an internal error" in err
    assert "ValueError: an internal inconsistency" in err


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


def test_a_killed_scan_resumes_and_extends_from_the_store_alone(tmp_path):
    """Issue 15 item 7: after kill -9 the store still knows its model; the CLI says how to go on."""
    n, k = 300, 6
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "landscape.cli", "scan", "--teacher",
                             f"identity:{k}", "--students", str(k), "--starts", str(n),
                             "--seed", "5", "--chunk-size", "4", "--store", "part.db", "-q"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _finished(tmp_path / "part.db") < 8 and time.monotonic() < deadline:
        assert proc.poll() is None
        time.sleep(0.05)
    proc.kill()                                                  # kill -9: no clean-up at all
    proc.wait(timeout=60)
    done = _finished(tmp_path / "part.db")
    assert 8 <= done < n
    for command in (["classify", "--store", "part.db"], ["report", "part.db"],
                    ["convexity", "--store", "part.db"]):
        r = run_cli(*command, cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert (f"store part.db holds an unfinished scan ({done} of {n} starts done): finish it "
                "with 'landscape scan --store part.db'") in r.stderr
        assert "Scan.load" not in r.stderr and "Traceback" not in r.stderr
    r = run_cli("scan", "--store", "part.db", "--starts", 5, cwd=tmp_path)
    assert r.returncode == 2
    assert "--starts 5: store part.db holds starts 0.." in r.stderr
    assert "n_starts" not in r.stderr
    r = run_cli("scan", "--store", "part.db", "--quiet", cwd=tmp_path)    # no model flags
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"lr = {5 / k:.4g} (stored with the scan in part.db)\n")
    m = ls.ReluTeacherStudent(teacher=np.eye(k), n_students=k)
    resumed = ls.Scan.load(tmp_path / "part.db")
    assert resumed.n_starts == n                                 # the stored n_starts
    whole = ls.scan(m, n + 20, rng=5, lr=5 / k, progress=False)
    np.testing.assert_array_equal(resumed.outcomes.x, whole.outcomes.x[:n])
    r = run_cli("scan", "--store", "part.db", "--starts", n + 20, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr                           # extended from the store alone
    extended = ls.Scan.load(tmp_path / "part.db")
    np.testing.assert_array_equal(extended.outcomes.x, whole.outcomes.x)
    assert [(p.kind, p.basin_count) for p in extended.points] == \
        [(p.kind, p.basin_count) for p in whole.points]


def test_resuming_with_other_settings_names_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "4", "-q"]) == 0
    capsys.readouterr()
    for flags, message in ((["--lr", "0.5"], "--lr 0.5: store scan.db was scanned with --lr 1.25; "
                                             "omit --lr to resume it, or pass another --store"),
                           (["--gtol", "1e-9"], "--gtol 1e-09: store scan.db was scanned with "
                                                "--gtol 1e-12"),
                           (["--seed", "3"], "--seed 3: store scan.db was scanned with another "
                                             "seed"),
                           (["--starts", "3"], "--starts 3: store scan.db holds starts 0..3; "
                                               "pass --starts 4 or more")):
        assert main(["scan", *flags, "-q"]) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert "different settings" not in err and "n_starts" not in err


def test_a_store_without_its_model_asks_for_the_model_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ls.scan(ls.ReluTeacherStudent(teacher=np.eye(K), n_students=K), 4, rng=0, lr=5 / K,
            store="py.db", progress=False)                     # written from Python
    assert main(["scan", "--store", "py.db", "-q"]) == 2
    assert "store py.db does not record which model it scanned" in capsys.readouterr().err
    assert main(["scan", "--store", "py.db", *MODEL_FLAGS, "-q"]) == 0


def test_split_rotation_without_an_aligned_pair_names_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "4", "-q"]) == 0
    capsys.readouterr()
    assert main(["convexity", "--store", "scan.db", "--kind", "split-rotation"]) == 2
    err = capsys.readouterr().err
    assert "--kind split-rotation: no two neurons of x are aligned" in err
    assert "pair=" not in err


# ---- the step size (issue 15, items 2 and 10) -----------------------------------------------
def test_a_diverging_step_exits_1_naming_lr_and_the_stable_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["scan", *MODEL_FLAGS, "--starts", "5", "--lr", "50", "--maxiter", "2000"]
    assert main(argv + ["-q"]) == 1
    out, err = capsys.readouterr()
    assert out == ""                                # no table of "critical points"
    assert ("landscape: failed: gradient descent diverged from 5 of the 5 starts run (of 5) "
            "with --lr 50") in err
    stable = float(err.split("2/lambda_max = ")[1].split(":")[0])
    assert f"pass a smaller --lr, e.g. --lr {stable / 2:.3g}" in err
    assert "or omit --lr for 1.25 (5/k, the COLT'21 protocol)" in err
    assert "Store scan.db held no start and was removed" in err
    assert not Path("scan.db").exists()
    assert main(["scan", *MODEL_FLAGS, "--starts", "5", "-q"]) == 0     # the default step works


def test_the_default_step_and_where_it_came_from_are_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "6", "--store", "ts.db", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"lr = {5 / K:.4g} (5/k, the COLT'21 protocol)\n")
    assert ls.Scan.load("ts.db").settings["lr"] == 5 / K
    assert main(["scan", *MODEL_FLAGS, "--starts", "6", "--store", "lr.db", "--lr", "0.7",
                 "-q"]) == 0
    assert capsys.readouterr().out.startswith("lr = 0.7 (--lr)\n")
    # other models keep 1 / lambda_max at the first 8 starts (ls.scan's default)
    two_layer = ["--model", "two-layer", "--beta", "e1:3", "--students", "2"]
    assert main(["scan", *two_layer, "--starts", "6", "--store", "tl.db"]) == 0
    out, err = capsys.readouterr()
    lr = ls.Scan.load("tl.db").settings["lr"]
    assert out.startswith(f"lr = {lr:.4g} (1/lambda_max at the first 6 starts)\n")
    assert "lr (1/lambda_max at the first 6 starts)" in err         # said before the scan runs
    m = ls.TwoLayerReLU(n_hidden=2, target=ls.LinearTarget(np.eye(3)[0]))
    assert lr == ls.scan(m, 6, rng=0, progress=False).settings["lr"]


def test_the_summary_counts_ends_at_no_certified_minimum(tmp_path, monkeypatch, capsys):
    """Issue 15 item 12: the spurious fraction is not the only category of ends."""
    monkeypatch.chdir(tmp_path)
    assert main(["scan", *MODEL_FLAGS, "--starts", "20", "--maxiter", "30", "-q"]) == 0
    out = capsys.readouterr().out
    s = ls.Scan.load("scan.db")
    n = s.unresolved_ends["not-converged"]
    lo, hi = s.unresolved_interval
    assert n > 0 and s.spurious_fraction == 0
    assert (f"unresolved ends (at no certified minimum) {n / 20:.4g} [{lo:.3g}, {hi:.3g}]: "
            f"{n} not-converged") in out.splitlines()


def test_workers_give_the_in_process_result(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = [*MODEL_FLAGS, "--starts", "12", "--seed", "4", "--lr", "1.25",
              "--chunk-size", "3", "-q"]
    assert main(["scan", *common, "--store", "a.db"]) == 0
    assert main(["scan", *common, "--store", "b.db", "--workers", "2"]) == 0
    a, b = ls.Scan.load("a.db"), ls.Scan.load("b.db")
    np.testing.assert_array_equal(a.outcomes.x, b.outcomes.x)
    np.testing.assert_array_equal(a.outcomes.point, b.outcomes.point)


# ---- workers die with the scan (issue 15, item 13) --------------------------------------------
WORKER_EXIT_SECONDS = 5      # a worker of a killed scan is gone by then (its chunk takes ~minutes)


def _children(pid):
    """Live (not zombie) child processes of `pid`, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_scan_is_killed(tmp_path):
    # lr = 1e-4: every start runs all its steps, so a chunk of 64 takes minutes
    flags = [*MODEL_FLAGS, "--starts", 256, "--chunk-size", 64, "--lr", 1e-4, "--workers", 2,
             "--store", "w.db", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "landscape.cli", "scan", *map(str, flags)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None
            workers = _children(proc.pid)
            time.sleep(0.1)
        assert len(workers) >= 2, workers
        time.sleep(1.0)                                  # the workers are inside their chunks
        assert all(_alive(p) for p in workers)
        proc.kill()                                      # kill -9 of the scan
        proc.wait(timeout=30)
        assert _wait_gone(workers, WORKER_EXIT_SECONDS) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:                                # never leave an orphan behind
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_portable_fallback_ends_a_worker_whose_parent_died(tmp_path):
    """Without prctl, the watchdog thread sees os.getppid() change and ends the worker."""
    (tmp_path / "parent.py").write_text(
        "import multiprocessing, os, time\n"
        "from landscape._workers import exit_with_parent\n"
        "def work(parent):\n"
        "    exit_with_parent(parent, poll=0.05, use_prctl=False)\n"
        "    while True:\n"
        "        sum(range(10000))\n"
        "if __name__ == '__main__':\n"
        "    p = multiprocessing.Process(target=work, args=(os.getpid(),))\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(600)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "parent.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(proc.stdout.readline())
        time.sleep(0.5)
        assert _alive(child)
        proc.kill()
        proc.wait(timeout=30)
        assert _wait_gone([child], WORKER_EXIT_SECONDS) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
        proc.stdout.close()


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
