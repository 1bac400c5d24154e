"""Losses of shallow ReLU networks with exact derivatives."""

from .autodiff import AutogradModel, reference_model
from .balls import BallDerivatives
from .base import Model, check_model
from .empirical import EmpiricalReLU, NTKGram, ntk_gram
from .symmetry import (GroupElement, Stabilizer, Symmetry, align, aligning_element, canonicalize,
                       orbit_distance)
from .teacher_student import ReluTeacherStudent
from .two_layer import LinearTarget, ReluTarget, TwoLayerReLU

__all__ = ["Model", "check_model", "BallDerivatives", "AutogradModel", "reference_model", "ReluTeacherStudent",
           "TwoLayerReLU", "LinearTarget", "ReluTarget", "EmpiricalReLU", "ntk_gram", "NTKGram",
           "Symmetry", "Stabilizer", "canonicalize", "orbit_distance", "align",
           "aligning_element", "GroupElement"]
