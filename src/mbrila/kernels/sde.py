"""State-space (SDE) form of a kernel and its exact discretisation."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mbrila.utils.linalg import symmetrize


class SDEForm(NamedTuple):
    """``ds = F s dt + L dβ`` with stationary covariance ``P∞``; the GP is ``z = H s``.

    ``F (S, S)``, ``H (1, S)``, ``Pinf (S, S)``; then ``k(τ) = H expm(F τ) P∞ Hᵀ`` for ``τ ≥ 0``.
    """

    F: Tensor
    H: Tensor
    Pinf: Tensor


def discretize_sde(sde: SDEForm, dt: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
    """Exact discretisation over a step ``dt``: ``A = expm(F dt)``, ``Q = P∞ − A P∞ Aᵀ``.

    Parameters
    ----------
    sde : the kernel's :class:`SDEForm` (``F``, ``H``, ``P∞``); dt : the step in bins.
    """
    A = torch.linalg.matrix_exp(sde.F * dt)
    Q = symmetrize(sde.Pinf - A @ sde.Pinf @ A.mT)
    return A, Q
