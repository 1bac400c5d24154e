"""The benchmarks' shared result writer records the machine and its load (issue 15, item 14);
the record itself is the library's (landscape.machine), which the studies store too."""

import ast
import importlib.util
import json
import os
from pathlib import Path

import pytest

from landscape.machine import VECTOR_EXTENSIONS, machine_record, read_cpuinfo

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def record():
    spec = importlib.util.spec_from_file_location("record", BENCHMARKS / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpuinfo_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return None


def test_the_writer_records_cpu_vector_extensions_blas_threads_and_load(record, tmp_path):
    started = record.begin()
    out = tmp_path / "results" / "x.json"
    record.write_results(out, "x", "python benchmarks/x.py", {"rows": [1, 2]}, started=started)
    data = json.loads(out.read_text())
    assert data["benchmark"] == "x" and data["rows"] == [1, 2]
    assert data["command"] == "python benchmarks/x.py" and data["date"] == started["date"]
    assert data["wall_seconds"] >= 0
    m = data["machine"]
    assert isinstance(m["cpu_model"], str) and m["cpu_model"]
    assert m["cpus"] == os.cpu_count() and m["cpus_available"] >= 1
    flags = _cpuinfo_flags()
    if flags is not None:                  # exactly the vector flags the CPU reports
        assert m["vector_extensions"] == [f for f in VECTOR_EXTENSIONS if f in flags]
        if "avx2" in flags:
            assert "avx2" in m["vector_extensions"]
        if "avx512f" not in flags:
            assert "avx512f" not in m["vector_extensions"]
    # numpy's BLAS, with its kernel when it is OpenBLAS, and its thread count
    assert m["blas"], "no BLAS library recorded"
    for b in m["blas"]:
        assert b["version"] and isinstance(b["threads"], int) and b["threads"] >= 1
        if b["library"] == "openblas":
            assert isinstance(b["architecture"], str) and b["architecture"]
    assert m["blas_threads"] == max(b["threads"] for b in m["blas"])
    load = m["load_average"]
    for when in ("start", "end"):
        assert len(load[when]) == 3 and all(v >= 0 for v in load[when])
    assert load["start"] == [round(v, 2) for v in started["load_average"]]
    assert m["numpy"] and m["scipy"] and m["python"] and m["platform"]


def test_the_machine_record_reads_the_cpuinfo_format(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n"
                       "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n")
    assert read_cpuinfo(cpuinfo) == ("AMD EPYC 9R14",
                                   ["fpu", "sse2", "avx", "avx2", "fma", "avx512f",
                                    "avx512bw"])
    assert read_cpuinfo(tmp_path / "absent") == (None, None)


def test_the_library_record_has_the_load_now():
    m = machine_record()
    assert len(m["load_average"]) == 3 and all(v >= 0 for v in m["load_average"])
    assert m["cpus"] == os.cpu_count() and m["blas"] and m["landscape"]


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")
                                          if p.name != "record.py"))
def test_every_benchmark_writes_through_the_shared_writer(script):
    """No benchmark writes its own JSON (and so leaves the machine out)."""
    tree = ast.parse((BENCHMARKS / script).read_text())
    calls = {(getattr(n.func, "attr", None) or getattr(n.func, "id", None))
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert ("record", "write_results") in imports and ("record", "begin") in imports
    assert {"write_results", "begin"} <= calls
    assert not {"dump", "dumps", "write_text"} & calls, f"{script} writes JSON itself"
