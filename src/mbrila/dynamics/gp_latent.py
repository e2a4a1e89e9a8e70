"""A Gaussian-process latent as a state-space block: AR(P) lift, or the exact SDE when there is one.

For an across latent observed in ``V`` regions with delays ``δ^v(t)``, the block's views are
``x^v_t = z(t − δ^v(t))`` of one GP ``z`` with kernel ``k`` (unit variance plus a nugget ``ε``). The state is the
AR(P) lift of :mod:`mbrila.dynamics.lift`. A single-view latent without delay whose kernel offers
``sde_form()`` (the Matérn family) uses the exact discretised SDE instead: ``A = expm(F)``,
``Q = P∞ − A P∞ Aᵀ``, read out through ``H``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbrila.dynamics.block import BlockTransition
from mbrila.dynamics.exact_gp import check_gp_latent
from mbrila.dynamics.lift import lift
from mbrila.kernels import BaseKernel, discretize_sde


class MarkovianGPLatent(nn.Module):
    """One GP latent, lifted to a linear-Gaussian state-space block.

    Parameters
    ----------
    kernel : the latent's kernel; its parameters (e.g. the timescale) are learned.
    n_views : ``V``, the regions that observe this latent (1 for a within latent).
    order : AR order ``P`` of the lift (ignored on the exact-SDE path).
    eps : GP nugget ``ε`` (DLAG's convention: ``k_total = (1 − ε) k + ε δ``); keeps the lift well conditioned.
    exact_sde : use ``kernel.sde_form()`` when the latent has one view and no delay (default True).
    """

    def __init__(
        self, kernel: BaseKernel, n_views: int = 1, order: int = 4, eps: float = 1e-3, exact_sde: bool = True
    ) -> None:
        super().__init__()
        check_gp_latent(kernel, n_views, eps)
        if order < 1:
            raise ValueError(f"order (the AR order P) must be at least 1; got {order}.")
        self.kernel = kernel
        self.n_views = n_views
        self.order = order
        self.eps = eps
        self.uses_sde = bool(exact_sde and n_views == 1 and kernel.has_sde_form)

    @property
    def state_dim(self) -> int:
        if self.uses_sde:
            return int(self.kernel.sde_form().F.shape[-1])
        return self.order * self.n_views

    def transition(self, delays: Tensor | None = None) -> BlockTransition:
        """State-space pieces for the given delays.

        Parameters
        ----------
        delays : ``(V,)`` constant or ``(T, V)`` time-varying delays in bins (None: no delay).
        """
        if self.uses_sde:
            if delays is not None and bool((delays != 0).any()):
                raise ValueError("the exact-SDE path has no delays; build the latent with exact_sde=False.")
            sde = self.kernel.sde_form()
            A, Q = discretize_sde(sde, 1.0)
            # The nugget is white noise on the read-out; the SDE state carries the (1 − ε) smooth part.
            scale = 1.0 - self.eps
            S = A.shape[-1]
            noisy = torch.arange(S, device=A.device)
            return BlockTransition(A=A, Q=scale * Q, P0=scale * sde.Pinf, H=sde.H, noisy=noisy)
        ref = self._reference_tensor()
        if delays is None:
            delays = torch.zeros(self.n_views, dtype=ref.dtype, device=ref.device)
        if delays.shape[-1] != self.n_views:
            raise ValueError(f"delays must have {self.n_views} views in the last dimension; got {tuple(delays.shape)}.")
        A, Q, P0 = lift(self.kernel, delays, self.order, self.eps)
        S = self.state_dim
        H = torch.eye(self.n_views, S, dtype=A.dtype, device=A.device)
        noisy = torch.arange(self.n_views, device=A.device)
        return BlockTransition(A=A, Q=Q, P0=P0, H=H, noisy=noisy)

    def _reference_tensor(self) -> Tensor:
        return self.kernel.reference_tensor()
