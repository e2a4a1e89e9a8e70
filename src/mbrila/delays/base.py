"""The delay interface shared by every model: ``delays(T)`` returns ``(T, n_regions, n_across)`` in bins.

Convention (everywhere in mbrila): region ``r`` sees across latent ``k`` at time ``t − δ_k^r(t)``; region 0 is the
reference (``δ^0 ≡ 0``); ``δ^r > 0`` means region ``r`` lags the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Delay(nn.Module):
    """Base class of delay parametrisations.

    Parameters
    ----------
    n_regions : regions observing the across latents (including the reference region 0).
    n_across : across latents.
    """

    #: True when δ does not change within a trial (the lifted model is then time-invariant).
    constant: bool = True
    #: False for parametrisations with nothing to learn (all delays zero); delay metrics are skipped then.
    learns_delays: bool = True

    def __init__(self, n_regions: int, n_across: int) -> None:
        super().__init__()
        if n_regions < 1:
            raise ValueError(f"n_regions must be at least 1; got {n_regions}.")
        if n_across < 0:
            raise ValueError(f"n_across must be non-negative; got {n_across}.")
        self.n_regions = int(n_regions)
        self.n_across = int(n_across)

    def delays(self, T: int) -> Tensor:
        """Delays ``(T, n_regions, n_across)`` in bins, column 0 (the reference region) all zero."""
        raise NotImplementedError

    def log_prior(self) -> Tensor:
        """Log prior density of the delay parameters (up to a constant); 0 unless a subclass sets one."""
        return self._reference().new_zeros(())

    def latent_delays(self, k: int, T: int) -> Tensor:
        """Delays of across latent ``k`` over the regions: ``(n_regions,)`` if constant, else ``(T, n_regions)``."""
        d = self.delays(T)[..., k]
        return d[0] if self.constant else d

    def _reference(self) -> Tensor:
        for p in self.parameters():
            return p
        for b in self.buffers():
            return b
        return torch.zeros(())


class NoDelay(Delay):
    """All delays zero (GPFA-style shared latents).

    Parameters
    ----------
    n_regions, n_across : sizes (as :class:`Delay`).
    """

    learns_delays = False
    _zero: Tensor

    def __init__(self, n_regions: int, n_across: int) -> None:
        super().__init__(n_regions, n_across)
        self.register_buffer("_zero", torch.zeros(()))

    def delays(self, T: int) -> Tensor:
        return self._zero.expand(T, self.n_regions, self.n_across)
