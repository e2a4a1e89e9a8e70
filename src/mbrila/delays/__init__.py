"""Inter-region delay parametrisations: none, constant, and (for ADM) time-varying."""

from mbrila.delays.base import Delay, NoDelay
from mbrila.delays.fixed import FixedDelay
from mbrila.delays.time_varying import TimeVaryingDelay, gaussian_basis

__all__ = ["Delay", "FixedDelay", "NoDelay", "TimeVaryingDelay", "gaussian_basis"]
