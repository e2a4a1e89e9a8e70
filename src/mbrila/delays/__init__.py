"""Inter-region delay parametrisations: none, constant, and (for ADM) time-varying."""

from mbrila.delays.base import Delay, NoDelay
from mbrila.delays.fixed import FixedDelay

__all__ = ["Delay", "FixedDelay", "NoDelay"]
