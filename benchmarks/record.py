"""The shared writer of benchmark results: every file says on what machine, and under what load,
its numbers were measured.

Timings do not travel: the same job took 3 s on one 2-core machine and 9-14 s on a loaded one
of the same kind, and numpy's transcendental loops and OpenBLAS's kernels depend on the CPU's
vector extensions.  So each result file records, besides the date and the command:

- the CPU model and its vector extensions (from /proc/cpuinfo; ``platform`` elsewhere),
- the CPUs the process may use, and the BLAS libraries loaded with their version, kernel
  (OpenBLAS's ``architecture``, e.g. Haswell or SkylakeX) and thread count (threadpoolctl),
- the load average (``os.getloadavg()``) when the benchmark started and when it ended.

Use::

    from record import begin, write_results
    started = begin()                      # first thing in main()
    ...
    write_results(path, "name", command, {"rows": rows, ...}, started=started)

``python benchmarks/record.py`` prints this machine's record.
"""

import datetime
import json
import os
import platform
import sys
import time

__all__ = ["begin", "machine", "write_results", "VECTOR_EXTENSIONS"]

# the flags that decide which SIMD loops numpy and which kernels OpenBLAS can use
VECTOR_EXTENSIONS = ("sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c",
                     "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma",
                     "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                     "asimd", "sve", "sve2")


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:                        # not available on this platform
        return None


def begin():
    """The date, a clock and the load average when a benchmark starts (for
    :func:`write_results`)."""
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "clock": time.perf_counter(), "load_average": _load_average()}


def _cpuinfo(path="/proc/cpuinfo"):
    """(model name, flags) of the first processor listed in `path`, or (None, None)."""
    model = flags = None
    try:
        with open(path) as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "processor") and model is None \
                        and not value.strip().isdigit():
                    model = value.strip()
                elif key in ("flags", "features") and flags is None:
                    flags = value.split()
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def _blas():
    """The BLAS libraries loaded in this process: library, version, kernel and threads."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so that threadpoolctl sees it)
    import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS)
    from threadpoolctl import threadpool_info

    return [{"library": info.get("internal_api"), "version": info.get("version"),
             "architecture": info.get("architecture"), "threads": info.get("num_threads"),
             "threading_layer": info.get("threading_layer"),
             "file": os.path.basename(info.get("filepath", ""))}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def machine():
    """What the numbers of a benchmark depend on, as JSON-ready data."""
    import numpy
    import scipy

    model, flags = _cpuinfo()
    try:
        cpus_available = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus_available = None
    blas = _blas()
    try:
        import landscape
        version = landscape.__version__
    except ImportError:
        version = None
    return {
        "cpu_model": model or platform.processor() or platform.machine() or None,
        "vector_extensions": (None if flags is None
                              else [f for f in VECTOR_EXTENSIONS if f in flags]),
        "cpus": os.cpu_count(),
        "cpus_available": cpus_available,
        "blas": blas,
        "blas_threads": max((b["threads"] or 0 for b in blas), default=None),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                  "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
                       if k in os.environ},
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "landscape": version,
    }


def write_results(out, name, command, payload, *, started):
    """Write a benchmark's results as JSON: name, command, date, the machine (with the load
    average at start and end), the benchmark's wall time and `payload`.

    Parameters
    ----------
    out : str or os.PathLike
    name, command : str
    payload : dict
        The benchmark's own fields (settings, rows, summary, ...).
    started : dict
        What :func:`begin` returned when the benchmark started.
    """
    info = machine()
    info["load_average"] = {"start": started["load_average"], "end": _load_average(),
                            "note": "1, 5 and 15 minute averages (os.getloadavg)"}
    data = {"benchmark": name, "command": command, "date": started["date"],
            "wall_seconds": round(time.perf_counter() - started["clock"], 3),
            "machine": info, **payload}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, out)
    return data


if __name__ == "__main__":
    json.dump({**machine(), "load_average": _load_average()}, sys.stdout, indent=2)
    print()
