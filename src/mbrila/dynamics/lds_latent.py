"""A free linear dynamical system as a latent block (no kernel): ``s_t = A s_{t−1} + w_t``, ``w_t ~ N(0, Q)``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbrila.dynamics.block import BlockMoments, BlockTransition
from mbrila.utils.linalg import symmetrize


class FreeLDSLatent(nn.Module):
    """Learned ``A (S, S)``, ``Q (S, S)`` and ``P0`` with a closed-form M-step.

    The block has ``S = dim`` states and ``n_groups · dim`` views: every group (region) reads the whole state,
    view ``g·dim + i`` being state entry ``i``.

    Parameters
    ----------
    dim : state dimension.
    n_groups : how many regions read the state (1 for a region-private block).
    decay : initial ``A = decay · I``; ``Q`` starts at ``(1 − decay²) I`` so the initial process has unit variance.
    """

    A: Tensor
    Q: Tensor
    P0: Tensor

    def __init__(self, dim: int, n_groups: int = 1, decay: float = 0.9) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be at least 1; got {dim}.")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1) for a stable initial A; got {decay}.")
        self.dim = int(dim)
        self.n_groups = int(n_groups)
        eye = torch.eye(dim)
        self.register_buffer("A", decay * eye)
        self.register_buffer("Q", (1 - decay**2) * eye)
        self.register_buffer("P0", eye.clone())

    @property
    def n_views(self) -> int:
        return self.n_groups * self.dim

    @property
    def state_dim(self) -> int:
        return self.dim

    def transition(self, delays: Tensor | None = None) -> BlockTransition:
        if delays is not None and bool((delays != 0).any()):
            raise ValueError("a free LDS latent has no delays.")
        H = torch.eye(self.dim, dtype=self.A.dtype, device=self.A.device).repeat(self.n_groups, 1)
        noisy = torch.arange(self.dim, device=self.A.device)
        return BlockTransition(A=self.A, Q=self.Q, P0=self.P0, H=H, noisy=noisy)

    @torch.no_grad()
    def m_step(self, mom: BlockMoments) -> None:
        """Maximise the expected complete-data log prior in closed form (moments summed over time)."""
        mom = mom.summed_over_time()
        cur, cross, prev = mom.cur[0], mom.cross[0], mom.prev[0]
        A = torch.linalg.solve(prev, cross.mT).mT  # Σ E[s_t s_{t−1}ᵀ] (Σ E[s_{t−1} s_{t−1}ᵀ])⁻¹
        Q = symmetrize(cur - A @ cross.mT) / mom.count
        floor = torch.finfo(Q.dtype).eps ** 0.5 * torch.eye(self.dim, dtype=Q.dtype, device=Q.device)
        self.A.copy_(A)
        self.Q.copy_(Q + floor)
        self.P0.copy_(symmetrize(mom.first) / mom.n_trials + floor)
