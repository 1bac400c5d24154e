"""Common behaviour of result dataclasses: dict round-trips and a readable repr."""

import dataclasses

import numpy as np

__all__ = ["Result"]


def _encode(value):
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, Result):
        return {"__result__": type(value).__name__, "fields": value.to_dict()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value):
    if isinstance(value, dict) and "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=value["dtype"]).reshape(value["shape"])
    if isinstance(value, dict) and "__result__" in value:
        return Result._registry[value["__result__"]].from_dict(value["fields"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def _short(value):
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return np.array2string(value, precision=4, separator=", ")
        return f"<array {value.shape} {value.dtype}>"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"<{type(value).__name__} of {len(value)}>"
    return repr(value)


class Result:
    """Mixin for frozen result dataclasses.

    ``to_dict()`` gives JSON-serialisable data (arrays become tagged lists with
    dtype and shape, nested results are tagged by class name); ``from_dict``
    reverses it exactly.
    """

    _registry = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Result._registry[cls.__name__] = cls

    def to_dict(self):
        """The fields as JSON-serialisable data (float64 arrays round-trip exactly)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data):
        """Rebuild a result from :meth:`to_dict` output."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"data has fields {sorted(unknown)} that {cls.__name__} does not "
                             f"know; was it written by another version?")
        return cls(**{k: _decode(v) for k, v in data.items()})

    def __repr__(self):
        parts = [f"{f.name}={_short(getattr(self, f.name))}" for f in dataclasses.fields(self)
                 if f.repr]
        return f"{type(self).__name__}({', '.join(parts)})"
