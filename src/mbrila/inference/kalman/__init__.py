"""Batched Kalman filtering and smoothing: sequential recursion and parallel associative scan.

Pure functions of tensors; see :func:`kalman_smoother` for the model and shapes.
"""

from mbrila.inference.kalman.api import kalman_filter, kalman_smoother, resolve_method
from mbrila.inference.kalman.params import LGSSM, FilterResult, SmootherResult

__all__ = ["LGSSM", "FilterResult", "SmootherResult", "kalman_filter", "kalman_smoother", "resolve_method"]
