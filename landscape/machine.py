"""What a measured number depends on: the machine record every benchmark and study stores.

Timings and some floating-point results do not travel between machines: numpy's
transcendental loops and OpenBLAS's kernels depend on the CPU's vector extensions, and a
shared machine's load inflates seconds.  :func:`machine_record` collects, as JSON-ready data,

- the CPU model and its vector extensions (from /proc/cpuinfo; ``platform`` elsewhere),
- the CPUs the process may use, and the BLAS libraries loaded with their version, kernel
  (OpenBLAS's ``architecture``, e.g. Haswell or SkylakeX) and thread count (threadpoolctl),
- the thread variables, the Python, numpy, scipy and landscape versions,
- the load average (``os.getloadavg()``) now.

``python -m landscape.machine`` prints the record of the machine at hand.
"""

import json
import os
import platform
import sys

__all__ = ["machine_record", "load_average", "read_cpuinfo", "blas_libraries", "VECTOR_EXTENSIONS"]

# the flags that decide which SIMD loops numpy and which kernels OpenBLAS can use
VECTOR_EXTENSIONS = ("sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c",
                     "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma",
                     "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                     "asimd", "sve", "sve2")


def load_average():
    """The 1, 5 and 15 minute load averages (``os.getloadavg``), rounded; None where the
    platform has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:                        # not available on this platform
        return None


def read_cpuinfo(path="/proc/cpuinfo"):
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


def blas_libraries():
    """The BLAS libraries loaded in this process: library, version, kernel and threads."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so that threadpoolctl sees it)
    import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS)
    from threadpoolctl import threadpool_info

    return [{"library": info.get("internal_api"), "version": info.get("version"),
             "architecture": info.get("architecture"), "threads": info.get("num_threads"),
             "threading_layer": info.get("threading_layer"),
             "file": os.path.basename(info.get("filepath", ""))}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def machine_record():
    """What the numbers of a benchmark or study depend on, as JSON-ready data (module
    docstring); ``load_average`` is the load now."""
    import numpy
    import scipy

    model, flags = read_cpuinfo()
    try:
        cpus_available = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus_available = None
    blas = blas_libraries()
    from . import __version__ as version
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
        "load_average": load_average(),
    }




if __name__ == "__main__":
    json.dump(machine_record(), sys.stdout, indent=2)
    print()
