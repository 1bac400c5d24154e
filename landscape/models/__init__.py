"""Losses of shallow ReLU networks with exact derivatives."""

from .base import Model
from .teacher_student import ReluTeacherStudent
from .two_layer import LinearTarget, ReluTarget, TwoLayerReLU

__all__ = ["Model", "ReluTeacherStudent", "TwoLayerReLU", "LinearTarget", "ReluTarget"]
