"""Where the chunks of a scan run: in-process, a ``concurrent.futures`` executor, or Dask.

Each chunk is one task, :func:`~landscape.scan.pipeline.run_chunk`; workers
return their results and only the calling process writes the store.
"""

import concurrent.futures
import uuid

from . import pipeline

__all__ = ["check_executor", "run_chunks"]


def _is_dask_client(executor):
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(
        executor, "submit")


def check_executor(executor):
    """Raise TypeError unless `executor` is None, a concurrent.futures.Executor or a dask
    distributed.Client."""
    if executor is None or isinstance(executor, concurrent.futures.Executor) or \
            _is_dask_client(executor):
        return
    raise TypeError("executor must be None (in-process), a concurrent.futures.Executor "
                    "(e.g. ProcessPoolExecutor) or a dask distributed.Client, got "
                    f"{type(executor).__name__}")


def run_chunks(model, settings, chunks, X0_all, executor):
    """Yield the :class:`~landscape.store.Chunk` result of every chunk of start indices, in
    the order they finish.

    Parameters
    ----------
    model : Model
    settings : dict
        The scan's settings (see :func:`~landscape.scan.pipeline.run_chunk`).
    chunks : sequence of ndarray of int
        Start indices of each chunk.
    X0_all : ndarray of shape (n_starts, n_params) or None
        Explicit starts, indexed by start; None: drawn from the seed by each task.
    executor : None, concurrent.futures.Executor or distributed.Client
        None runs the chunks one after the other in this process.  Pending
        tasks are cancelled when the caller stops iterating (or fails).
    """
    scan_id = uuid.uuid4().hex           # chunks of this scan share their classifications
                                         # within a process (pipeline.run_chunk)

    def task(starts):
        return (model, settings, starts, None if X0_all is None else X0_all[starts], scan_id)

    if executor is None:
        for starts in chunks:
            yield pipeline.run_chunk(*task(starts))
        return
    if isinstance(executor, concurrent.futures.Executor):
        futures = [executor.submit(pipeline.run_chunk, *task(s)) for s in chunks]
        try:
            for f in concurrent.futures.as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()
        return
    import distributed        # the optional extra landscape[distributed]
    futures = [executor.submit(pipeline.run_chunk, *task(s), pure=False) for s in chunks]
    try:
        for f in distributed.as_completed(futures):
            yield f.result()
    finally:
        executor.cancel(futures)
