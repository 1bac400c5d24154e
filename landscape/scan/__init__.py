"""Scans: many gradient-descent starts -> certified, classified, deduplicated critical points.

One module per idea, each usable on its own:

=================  ==========================================================================
``seeding``        per-start seeds: start i draws from child i of one ``SeedSequence``
                   (:func:`seed_settings`, :func:`child_seed`, :func:`initial_points`)
``steps``          the default step size 1 / lambda_max and the error of a step too large
``pipeline``       the per-start pipeline: descend, polish, classify, find the saddles passed
                   (:func:`run_starts`; :func:`run_chunk` is an executor's task)
``executors``      where chunks run: in-process, ``concurrent.futures`` or Dask
``dedup``          one point per symmetry orbit and critical manifold (:func:`deduplicate`,
                   :class:`Distinct`, the index :class:`Orbits`)
``basins``         after the starts: distinct points, basins, saddle -> minimum edges
``result``         :class:`Scan`, :class:`Point`, :class:`Outcomes`
``verify``         is a store the scan of this model, and are its points critical
``driver``         :func:`scan`, chunk by chunk into a store
``resume``         a stored scan's settings as :func:`scan` arguments (:func:`resume_plan`),
                   and :func:`resume_scan`, which ``Scan.load`` and ``landscape scan`` use
=================  ==========================================================================

``landscape.scan`` as an attribute of the package ``landscape`` is the function
:func:`scan`; import the other names from this package
(``from landscape.scan import run_starts``).
"""

from .dedup import Distinct, Orbits, deduplicate
from .driver import scan
from .pipeline import run_chunk, run_starts
from .result import CRITICAL_KINDS, Outcomes, Point, Scan
from .resume import ResumePlan, resume_plan, resume_scan
from .seeding import child_seed, initial_points, seed_settings
from .verify import fingerprint

__all__ = ["scan", "Scan", "Point", "Outcomes", "CRITICAL_KINDS", "deduplicate", "Distinct",
           "Orbits", "run_starts", "run_chunk", "resume_scan", "resume_plan", "ResumePlan",
           "seed_settings", "child_seed", "initial_points", "fingerprint"]
