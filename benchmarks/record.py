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
import sys
import time

from landscape.machine import load_average, machine_record

__all__ = ["begin", "machine", "write_results"]


def machine():
    """The machine record (:func:`landscape.machine.machine_record`) without its load: the load
    is recorded at start and end by :func:`write_results`."""
    info = machine_record()
    info.pop("load_average", None)
    return info


def begin():
    """The date, a clock and the load average when a benchmark starts (for
    :func:`write_results`)."""
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "clock": time.perf_counter(), "load_average": load_average()}


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
    info["load_average"] = {"start": started["load_average"], "end": load_average(),
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
    json.dump(machine_record(), sys.stdout, indent=2)
    print()
