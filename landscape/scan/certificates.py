"""Certificates of a scan's distinct points: ``scan(..., certify=True)``.

Every distinct strict minimum and strict saddle is given to :func:`landscape.certify`
(a computer-assisted proof in ball arithmetic); the certificates are kept in the store as
the annotation ``"certificates"`` (``{point id: Certificate.to_dict()}``) and attached to
the points (:attr:`Point.certificate <landscape.scan.Point.certificate>`) when a scan is
loaded.  They add to a finished scan: its settings and results do not change.
"""

from ..certify import Certificate, certify

__all__ = ["CERTIFIED_KINDS", "ANNOTATION", "certify_points", "read_certificates"]

#: Kinds of the points a scan certifies (the only kinds a proof by contraction can establish).
CERTIFIED_KINDS = ("strict-minimum", "strict-saddle")
#: The store annotation holding the certificates.
ANNOTATION = "certificates"


def certify_points(model, store, points):
    """Certify every point of a certifiable kind not certified yet; store the certificates.

    Parameters
    ----------
    model : Model
    store : Store
        The scan's store (open for writing).
    points : sequence of Point

    Returns
    -------
    dict
        ``{point id: Certificate}`` of every certified kind point.
    """
    done = read_certificates(store.annotations())
    todo = [p for p in points if p.kind in CERTIFIED_KINDS and p.id not in done]
    for p in todo:
        done[p.id] = certify(model, p.x)
    if todo:
        store.set_annotation(ANNOTATION, {str(i): c.to_dict() for i, c in sorted(done.items())})
    return done


def read_certificates(annotations):
    """``{point id: Certificate}`` from a store's annotations (empty when none)."""
    return {int(i): Certificate.from_dict(d)
            for i, d in (annotations or {}).get(ANNOTATION, {}).items()}
