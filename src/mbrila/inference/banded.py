"""Newton steps for a lifted GP state path through its block-banded precision (a batched banded Cholesky).

An AR(P)-lifted latent keeps ``P`` lags of each of its ``k`` components (a latent seen from one region is one
component): ``s_t[i] = z_{t − lag_i}[comp_i]``. Its transition copies every lagged entry and drives the newest::

    z_{t+1} = Φ_t s_t + w_t,    w_t ~ N(0, Q_t),    s_0 ~ N(0, P_0)

so the prior of the component path ``z = (z_{−P+1}, …, z_{T−1})`` (``n = T + P − 1`` blocks of ``k``) has the
precision

    Λ = Πᵀ P_0⁻¹ Π + Σ_t Ψ_tᵀ Q_t⁻¹ Ψ_t,     Ψ_t z = z_{t+1} − Φ_t s_t

(``Π`` picks ``s_0``), which is block-banded: no block of it couples times more than ``P`` apart. A Newton step of
the Laplace E-step solves ``(Λ + J) z = h`` with ``J`` block-diagonal (the pseudo-observations of the newest
entries), and a banded Cholesky does that in ``O(n·P²·k³)`` per trial — small ``k × k`` and ``Pk × k`` blocks
instead of the Kalman filter's ``O(n·D³)`` covariances (``D = P·k``).

The Kalman smoother stays the source of the posterior covariances and of the evidence
(:mod:`mbrila.inference.laplace`): the banded route to the covariances (Takahashi's selected inversion) multiplies
round-off by the backward regression coefficients ``Λ(j+1…j+P, j) Λ_jj⁻¹`` of a smooth process, which are large,
so it loses every digit over a few hundred steps; the RTS recursion's gains do not grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LagLayout:
    """Lifted state entries as lags of components: ``s_t[i] = z_{t − lag[i]}[comp[i]]`` (``(D,)`` long tensors)."""

    lag: Tensor
    comp: Tensor
    n_lags: int
    n_comp: int

    def block(self, T: int) -> Tensor:
        """``(T, D)``: the path block of each state entry at each step, ``t + P − 1 − lag``."""
        t = torch.arange(T, device=self.lag.device)
        return t[:, None] + (self.n_lags - 1) - self.lag[None, :]


def lag_layout(A: Tensor, Q: Tensor) -> LagLayout | None:
    """The lag structure of a lifted transition ``A`` (``(D, D)`` or ``(T-1, D, D)``, noise ``Q`` alike), or None.

    A row is a copy when, at every step, it holds a single 1 (always in the same column) and ``Q``'s row and column
    for it are zero; every other row drives a new component value. The layout exists when following the copies
    from each driven entry reaches every entry once and every component has the same number of lags. None
    otherwise (an SDE or free LDS block, mixed lag counts): callers then use the Kalman smoother.
    """
    A3 = A if A.ndim == 3 else A.unsqueeze(0)
    Q3 = Q if Q.ndim == 3 else Q.unsqueeze(0)
    if A3.shape[0] == 0:
        return None
    D = A3.shape[-1]
    source = A3.abs().argmax(-1)  # (n, D): where each copy row's 1 sits
    copy = ((A3 != 0).sum(-1) == 1) & (A3.gather(-1, source.unsqueeze(-1)).squeeze(-1) == 1)
    copy &= (Q3 == 0).all(-1) & (Q3 == 0).all(-2) & (source == source[:1])
    copy = copy.all(0)
    driven = torch.nonzero(~copy).flatten()
    if driven.numel() == 0 or driven.numel() == D:
        return None
    src = source[0]
    lag = torch.full((D,), -1, dtype=torch.long, device=A.device)
    comp = torch.full((D,), -1, dtype=torch.long, device=A.device)
    lag[driven] = 0
    comp[driven] = torch.arange(driven.numel(), device=A.device)
    rows = torch.nonzero(copy).flatten()
    for _ in range(D):  # follow the copies one lag at a time (set-up, not a hot path)
        ready = rows[(lag[rows] < 0) & (lag[src[rows]] >= 0)]
        if ready.numel() == 0:
            break
        lag[ready] = lag[src[ready]] + 1
        comp[ready] = comp[src[ready]]
    if bool((lag < 0).any()):
        return None
    k, P = driven.numel(), int(lag.max()) + 1
    pairs = comp * P + lag
    if D != k * P or pairs.unique().numel() != D:
        return None
    return LagLayout(lag=lag, comp=comp, n_lags=P, n_comp=k)


@dataclass(frozen=True)
class BandedPrior:
    """The prior precision ``Λ`` of the component path in lower block-band storage.

    ``band[j, m] = Λ[j + m, j]`` (``(n + P, P + 1, k, k)``; the last ``P`` blocks are zero padding), with the
    layout and the entries the read-out loads on (their components, all newest entries).
    """

    band: Tensor
    layout: LagLayout
    obs_comp: Tensor
    T: int

    @classmethod
    def build(cls, A: Tensor, Q: Tensor, P0: Tensor, idx: Tensor, T: int) -> BandedPrior | None:
        """From a lifted LGSSM prior; None when it has no lag layout, when the read-out loads on a lagged entry, or
        when ``P_0`` or the driven block of ``Q`` is singular (the precision form needs their inverses)."""
        layout = lag_layout(A, Q)
        if layout is None or bool((layout.lag[idx] != 0).any()):
            return None
        P, k = layout.n_lags, layout.n_comp
        n = T + P - 1
        driven = torch.nonzero(layout.lag == 0).flatten()
        driven = driven[layout.comp[driven].argsort()]  # component order
        L0, info0 = torch.linalg.cholesky_ex(P0)
        Qd = Q[..., driven[:, None], driven]
        LQ, infoQ = torch.linalg.cholesky_ex(Qd)
        if bool(info0 != 0) or bool((infoQ != 0).any()):
            return None
        band = P0.new_zeros(n + P, P + 1, k, k)
        # s_0 = (z_0, z_{-1}, …): entry i sits in block P − 1 − lag_i.
        Pi0 = torch.cholesky_inverse(L0)
        blk0 = (P - 1) - layout.lag
        # Λ[a, b] for a ≥ b is stored at band[b, a − b]: each pair (i, i') with block_i ≥ block_i' adds P_0⁻¹[i, i']
        # there (the pairs the other way round are its transposes).
        keep = blk0[:, None] >= blk0[None, :]
        rows, cols = torch.nonzero(keep, as_tuple=True)
        at = (blk0[cols], blk0[rows] - blk0[cols], layout.comp[rows], layout.comp[cols])
        band.index_put_(at, Pi0[rows, cols], accumulate=True)
        if T > 1:
            # Transition t couples the window of blocks t … t + P: Ψ_t = [coefficients of s_t's entries | I].
            Phi = A[..., driven, :]  # (…, k, D)
            Psi = P0.new_zeros(*Phi.shape[:-1], (P + 1) * k)
            Psi[..., P * k :] = torch.eye(k, dtype=P0.dtype, device=P0.device)
            Psi.index_add_(-1, ((P - 1) - layout.lag) * k + layout.comp, -Phi)
            Omega = torch.cholesky_inverse(LQ)
            contrib = (Psi.mT @ Omega @ Psi).reshape(*Psi.shape[:-2], P + 1, k, P + 1, k)
            for a in range(P + 1):
                for b in range(a + 1):
                    band[b : b + T - 1, a - b] += contrib[..., a, :, b, :]
        return cls(band=band, layout=layout, obs_comp=layout.comp[idx], T=T)

    def newton_target(self, Ja: Tensor, ha: Tensor) -> Tensor | None:
        """The state path ``(B, T, D)`` solving ``(Λ + J) z = h`` for pseudo-observations ``J^a (B, T, k_o, k_o)``,
        ``h^a (B, T, k_o)`` on the read-out's entries; None if the banded Cholesky fails (the caller falls back)."""
        B = Ja.shape[0]
        P, T = self.layout.n_lags, self.T
        band = self.band.expand(B, *self.band.shape).clone()
        c = self.obs_comp
        diag = band[:, P - 1 : P - 1 + T, 0]  # (B, T, k, k) view
        diag[..., c[:, None], c] += Ja
        h = Ja.new_zeros(B, band.shape[1], self.layout.n_comp)
        h[:, P - 1 : P - 1 + T, c] = ha
        z = _banded_solve(band, h, P + T - 1)
        if z is None:
            return None
        return z[:, self.layout.block(T), self.layout.comp]


def _banded_solve(band: Tensor, h: Tensor, n: int) -> Tensor | None:
    """``x = Λ⁻¹ h`` for ``Λ`` in lower block-band storage ``(B, n + P, P + 1, k, k)`` (overwritten with its Cholesky
    factor) and ``h (B, n + P, k)``; None when a pivot block is not positive definite."""
    B, _, P1, k, _ = band.shape
    P = P1 - 1
    y = h.clone()
    # A failed pivot is checked once at the end (no device synchronisation per step): what follows it is discarded.
    failed = torch.zeros((), dtype=torch.bool, device=band.device)
    for j in range(n):
        # Right-looking block Cholesky: factor the pivot, scale the panel below it, update the next P columns.
        Ljj, info = torch.linalg.cholesky_ex(band[:, j, 0])
        failed = failed | (info != 0).any()
        band[:, j, 0] = Ljj
        X = torch.linalg.solve_triangular(Ljj.mT, band[:, j, 1:].reshape(B, P * k, k), upper=True, left=False)
        band[:, j, 1:] = X.reshape(B, P, k, k)
        XXt = X @ X.mT
        for m in range(1, P + 1):
            band[:, j + m, : P + 1 - m] -= XXt[:, (m - 1) * k :, (m - 1) * k : m * k].reshape(B, P + 1 - m, k, k)
        # Forward substitution L y = h, interleaved.
        yj = torch.linalg.solve_triangular(Ljj, y[:, j].unsqueeze(-1), upper=False)
        y[:, j] = yj.squeeze(-1)
        y[:, j + 1 : j + P + 1] -= (X @ yj).reshape(B, P, k)
    if bool(failed):
        return None
    x = y
    for j in range(n - 1, -1, -1):
        # Back substitution Lᵀ x = y: x_j = L_jj⁻ᵀ (y_j − Σ_m L(j+m, j)ᵀ x_{j+m}).
        panel = band[:, j, 1:].reshape(B, P * k, k)
        r = x[:, j].unsqueeze(-1) - panel.mT @ x[:, j + 1 : j + P + 1].reshape(B, P * k, 1)
        x[:, j] = torch.linalg.solve_triangular(band[:, j, 0].mT, r, upper=True).squeeze(-1)
    return x[:, :n]
