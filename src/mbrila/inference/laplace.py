"""Laplace approximation of the latent posterior of a Poisson read-out, by Newton's method on the Kalman core.

Model: the state path ``s`` of a linear-Gaussian state-space prior (:class:`~mbrila.inference.kalman.LGSSM`,
``A, Q, m0 = 0, P0``) and counts ``y_{b,t,n} ~ Poisson(f(η_{b,t,n}))`` with ``η_t = C s_t + d`` (``C (N, D)``,
``d (N,)``). The log posterior ``Ψ(s) = log p(s) + Σ ℓ(y, η)`` is concave (:mod:`mbrila.observations.poisson`).

Newton step from ``s̄`` (``η̄ = C s̄ + d``, ``g = ∂ℓ/∂η``, ``W = −∂²ℓ/∂η²`` at ``η̄``): the maximiser of ``log p(s)``
plus the second-order expansion of ``ℓ`` is the posterior mean of a linear-Gaussian model with information-form
pseudo-observations::

    J_{b,t} = Cᵀ diag(W_{b,t}) C,    h_{b,t} = Cᵀ (g_{b,t} + W_{b,t} ⊙ (η̄_{b,t} − d))

so each step solves ``(Λ + J) s = h`` (``Λ`` the prior precision), batched over trials (the precision differs
between trials and steps, and touches only the state entries the read-out sees). For an AR(P)-lifted prior the
solve is a banded Cholesky of the path's precision (:mod:`mbrila.inference.banded`); for any other prior it is a
Kalman filter (:mod:`mbrila.inference.kalman.selected`) and the smoothed means. Steps are damped by halving until
``Ψ`` does not fall (per trial). Once a step is below the tolerance, one Kalman filter and RTS smoother at the last
expansion point give the covariances of the Laplace approximation ``N(ŝ, (Λ + J)⁻¹)``, and the Laplace
approximation of the marginal likelihood is the integral of the prior times the expansion::

    log p(y_b) ≈ Σ_{t,n} [ℓ(η̂) − g (η̂ − d) − ½ W (η̂ − d)²] + log ∫ p(s) exp(Σ_t h_tᵀ s_t − ½ s_tᵀ J_t s_t) ds

(the second term is the information route's log-likelihood of that filter).

``log p(s)`` for the damping uses the pseudo-inverse of ``Q`` (a lifted GP's process noise drives only the newest
lag): the smoother's means satisfy the lift's shift constraints, on which the path density is
``−½ s_0ᵀ P0⁻¹ s_0 − ½ Σ_t w_tᵀ Q_t⁺ w_t`` up to a constant, ``w_t = s_{t+1} − A_t s_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mbrila.distributed import all_max
from mbrila.inference.banded import BandedPrior
from mbrila.inference.kalman import sequential
from mbrila.inference.kalman.params import LGSSM
from mbrila.inference.kalman.selected import filter_selected
from mbrila.observations.poisson import LINKS, loglik_terms
from mbrila.utils.linalg import mv


@dataclass(frozen=True)
class LaplaceResult:
    """The Laplace approximation ``N(mean, cov)`` of the latent path's posterior, per trial.

    Attributes
    ----------
    mean : ``(B, T, D)`` posterior mode.
    cov : ``(B, T, D, D)`` marginal covariances; cross_cov : ``(B, T-1, D, D)``, ``Cov(s_{t+1}, s_t)``.
    log_likelihood : ``(B,)`` Laplace approximation of ``log p(y_b)`` (``log y!`` included).
    n_newton : Newton steps taken.
    converged : whether every trial's largest change of ``η`` in the last step was below the tolerance.
    """

    mean: Tensor
    cov: Tensor
    cross_cov: Tensor
    log_likelihood: Tensor
    n_newton: int
    converged: bool


def _pinv_psd(M: Tensor) -> Tensor:
    """Pseudo-inverse of PSD ``(..., D, D)`` matrices (eigenvalues below ``D·√ε·λ_max`` treated as zero)."""
    evals, evecs = torch.linalg.eigh(M)
    cut = M.shape[-1] * torch.finfo(M.dtype).eps ** 0.5 * evals.amax(-1, keepdim=True).clamp_min(0)
    inv = torch.where(evals > cut, 1.0 / evals.clamp_min(torch.finfo(M.dtype).tiny), torch.zeros_like(evals))
    return (evecs * inv.unsqueeze(-2)) @ evecs.mT


class _PathPrior:
    """``log p(s)`` of state paths up to a constant (see the module docstring); the pseudo-inverses once."""

    def __init__(self, params: LGSSM) -> None:
        self.A = params.A
        self.Q_pinv = _pinv_psd(params.Q)
        self.P0_pinv = _pinv_psd(params.P0)

    def __call__(self, s: Tensor) -> Tensor:
        s0 = s[:, 0]
        out = -0.5 * (s0 * (s0 @ self.P0_pinv)).sum(-1)
        if s.shape[1] > 1:
            # mv broadcasts a (D, D) or a time-varying (T-1, D, D) matrix over trials, for A and Q alike.
            w = s[:, 1:] - mv(self.A, s[:, :-1])
            out = out - 0.5 * (w * mv(self.Q_pinv, w)).sum((-1, -2))
        return out


def _readout_blocks(Ca: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    """The read-out's independent blocks: ``(entries, neurons, outer)`` per group of state entries that neurons load
    on together (a region's latents), ``outer (n_neurons, e²)`` the products ``c_n c_nᵀ`` of its neurons' loadings.

    ``J = Cᵀ diag(W) C`` is block-diagonal over these groups, so it is built block by block (``Σ_b n_b e_b²``
    multiply-adds per step instead of ``N k²``).
    """
    support = Ca != 0
    # Entries are linked when a neuron loads on both; the groups are the connected components of that graph.
    linked = (support.T.to(Ca.dtype) @ support.to(Ca.dtype)) > 0
    for _ in range(max(Ca.shape[1], 1).bit_length()):
        linked = (linked.to(Ca.dtype) @ linked.to(Ca.dtype)) > 0
    label = linked.to(torch.int64).argmax(-1)  # the first entry of each entry's group
    out = []
    for first in label.unique():
        entries = torch.nonzero(label == first).flatten()
        neurons = torch.nonzero(support[:, entries].any(-1)).flatten()
        Cb = Ca[neurons][:, entries]
        out.append((entries, neurons, (Cb.unsqueeze(-1) * Cb.unsqueeze(-2)).reshape(neurons.numel(), -1)))
    return out


def _pseudo_precision(W: Tensor, blocks: list[tuple[Tensor, Tensor, Tensor]], k: int) -> Tensor:
    """``J^a_{b,t} = C_aᵀ diag(W_{b,t}) C_a`` as ``(B, T, k, k)``, one block of the read-out at a time."""
    B, T, _ = W.shape
    Ja = W.new_zeros(B, T, k, k)
    for entries, neurons, outer in blocks:
        e = entries.numel()
        Ja[:, :, entries[:, None], entries] = (W[..., neurons].reshape(B * T, -1) @ outer).reshape(B, T, e, e)
    return Ja


class ReadoutSystem:
    """The read-out's side of a Newton step: the state entries it loads on and its pseudo-observations.

    ``idx``: the entries of ``s`` with a nonzero column of ``C`` (``k`` of them); only they enter ``J`` and ``h``.

    Parameters
    ----------
    C : ``(N, D)`` loadings of the drive ``η = C s + d``.
    """

    def __init__(self, C: Tensor) -> None:
        self.idx = torch.nonzero(C.abs().sum(0) > 0).flatten()
        self.Ca = C[:, self.idx]
        self.k = int(self.idx.numel())
        self._blocks = _readout_blocks(self.Ca)

    def drive(self, s: Tensor) -> Tensor:
        """``η − d = C s`` ``(B, T, N)`` for state paths ``s (B, T, D)``."""
        return s[..., self.idx] @ self.Ca.mT

    def pseudo_observations(self, W: Tensor, g: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(J^a, h^a)`` on the entries ``idx`` (``(B, T, k, k)``, ``(B, T, k)``) of the expansion at drive
        ``u = η̄ − d`` with ``g = ∂ℓ/∂η``, ``W = −∂²ℓ/∂η²`` (module docstring)."""
        return _pseudo_precision(W, self._blocks, self.k), (g + W * u) @ self.Ca


def _check_inputs(params: LGSSM, y: Tensor, mask: Tensor | None, init: Tensor | None, link: str) -> None:
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}; got {link!r}.")
    if params.C is None or params.d is None:
        raise ValueError("params.C and params.d (the read-out of the drive η = C s + d) are required.")
    if y.ndim != 3:
        raise ValueError(f"y must have shape (B, T, N) = (trials, time, neurons); got {tuple(y.shape)}.")
    if not y.is_floating_point():
        raise ValueError(f"y must be a floating tensor of counts (e.g. y.double()); got dtype {y.dtype}.")
    if bool((params.m0 != 0).any()):
        raise ValueError("params.m0 must be zero (the prior mean of the state); got a nonzero m0.")
    N, D = params.C.shape
    if y.shape[-1] != N:
        raise ValueError(f"y has {y.shape[-1]} neurons but params.C has {N} rows.")
    if mask is not None and mask.shape != y.shape:
        raise ValueError(f"mask must have the shape of y {tuple(y.shape)}; got {tuple(mask.shape)}.")
    if init is not None and tuple(init.shape) != (y.shape[0], y.shape[1], D):
        raise ValueError(
            f"init must be a state path of shape (B, T, D) = {(y.shape[0], y.shape[1], D)}; got {tuple(init.shape)}."
        )


def laplace_smoother(
    params: LGSSM,
    y: Tensor,
    mask: Tensor | None = None,
    *,
    link: str = "exp",
    init: Tensor | None = None,
    max_newton: int = 50,
    tol: float | None = None,
    all_processes: bool = False,
) -> LaplaceResult:
    """Laplace approximation of ``p(s | y)`` for Poisson counts ``y`` (see the module docstring).

    Parameters
    ----------
    params : the prior (``A, Q, m0, P0``; ``m0`` must be zero) and the read-out ``C (N, D)``, ``d (N,)`` of the
        drive ``η = C s + d`` (``R`` is ignored).
    y : ``(B, T, N)`` counts; mask : optional bool ``(B, T, N)``, True = observed (others carry no information).
    link : ``"exp"`` or ``"softplus"``.
    init : ``(B, T, D)`` starting path (e.g. the previous E-step's mode); default the prior mean, zero.
    max_newton : most Newton steps.
    tol : stop when no trial's drive ``η`` changes by more than ``tol`` in a step (default ``√ε`` of the dtype).
    all_processes : in a data-parallel fit, apply ``tol`` to every process's trials together, so that all take the
        same steps (a collective call: every process must make it; inference on one process leaves it False).

    Returns
    -------
    :class:`LaplaceResult`.
    """
    _check_inputs(params, y, mask, init, link)
    assert params.C is not None and params.d is not None
    C, d = params.C, params.d
    eps = float(torch.finfo(y.dtype).eps)
    tol = eps**0.5 if tol is None else float(tol)
    # Only the state entries the read-out loads on enter the pseudo-observations.
    readout = ReadoutSystem(C)
    idx, Ca, k = readout.idx, readout.Ca, readout.k
    y0 = y if mask is None else torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
    log_fact = torch.lgamma(y0 + 1)
    prior = _PathPrior(params)
    prior_args = (params.A, params.Q, params.m0, params.P0)
    B, T, _ = y.shape

    def terms(s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        u = readout.drive(s)  # η − d
        ll, g, W = loglik_terms(y0, u + d, link, log_fact)
        if mask is not None:
            # where, not a product: a masked entry's terms may overflow, and inf · 0 is NaN.
            zero = torch.zeros((), dtype=y.dtype, device=y.device)
            ll, g, W = torch.where(mask, ll, zero), torch.where(mask, g, zero), torch.where(mask, W, zero)
        return u, ll, g, W

    s = torch.zeros(B, T, params.state_dim, dtype=y.dtype, device=y.device) if init is None else init.clone()
    u, ll, g, W = terms(s)
    psi = ll.sum((-1, -2)) + prior(s)
    converged, n_newton = False, 0
    # A lifted GP prior's path precision is block-banded: Newton steps solve with it directly (banded Cholesky);
    # other priors (SDE or free LDS blocks) take the Kalman filter and the smoothed means.
    banded = BandedPrior.build(params.A, params.Q, params.P0, idx, T) if k > 0 else None
    D = params.state_dim
    workspace: tuple[Tensor, Tensor] | None = None
    for n_newton in range(1, max_newton + 1):  # noqa: B007 (the count is reported)
        # Pseudo-observations at the current path, then one linear solve gives the Newton target.
        Ja, ha = readout.pseudo_observations(W, g, u)
        pseudo, expansion = (Ja, ha), (u, ll, g, W)
        filt = None  # this step's Kalman filter, when it takes the Kalman route
        # A Newton step needs only the posterior means; the covariances are computed once, after the last step.
        target = banded.newton_target(Ja, ha) if banded is not None else None
        if target is None:
            if workspace is None:
                # Every Newton step's filter writes its covariances into the same memory (only the last is kept).
                workspace = (y.new_empty(T, B, D, D), y.new_empty(T, B, D, D))
            filt = filter_selected(*prior_args, idx, Ja, ha, workspace=workspace)
            target = sequential.smooth_means(params.A, filt[0], filt[1], filt[3], filt[4])
        step = target - s
        change = (step[..., idx] @ Ca.mT).abs().amax((-1, -2))  # the full Newton step's largest change of η
        largest = all_max(change.amax().reshape(1))[0] if all_processes else change.amax()
        if bool(largest <= tol):
            # Within tolerance of the mode the quadratic model is exact to round-off: take the full step (a line
            # search would compare objectives that differ by less than their round-off).
            s, converged = target, True
            break
        slack = 64 * eps * (ll.abs().sum((-1, -2)) + psi.abs() + 1)
        alpha = torch.ones(B, dtype=y.dtype, device=y.device)
        done = torch.zeros(B, dtype=torch.bool, device=y.device)
        s_new, psi_new, kept = s, psi, (u, ll, g, W)
        for _ in range(30):
            s_try = s + alpha[:, None, None] * step
            tried = terms(s_try)
            psi_try = tried[1].sum((-1, -2)) + prior(s_try)
            # A fall of ψ within its round-off counts as no fall: near the mode the gain of a full step is below
            # the rounding error of ψ, and a strict test would halve steps there forever.
            take = (psi_try >= psi - slack) & ~done
            if bool(take.all()):  # the usual case: every trial takes the full step, and its terms are kept as they are
                s_new, psi_new, kept = s_try, psi_try, tried
                break
            pick = take[:, None, None]
            s_new = torch.where(pick, s_try, s_new)
            psi_new = torch.where(take, psi_try, psi_new)
            # The accepted trial points' terms are kept, so the next step needs no second pass over the counts.
            kept = tuple(torch.where(pick, a, b) for a, b in zip(tried, kept, strict=True))  # type: ignore[assignment]
            done = done | take
            if bool(done.all()):
                break
            alpha = 0.5 * alpha
        s, psi = s_new, psi_new
        u, ll, g, W = kept
    # The Kalman filter and smoother at the last expansion point give the Laplace covariances and evidence.
    if filt is None:
        filt = filter_selected(*prior_args, idx, *pseudo, workspace=workspace)
    # In place: the covariances overwrite the filter's workspace instead of taking as much memory again.
    _, cov, cross = sequential.smooth(params.A, filt[0], filt[1], filt[3], filt[4], in_place=True)
    info_ll = filt[2]
    # The last expansion was at the path the final step (below tol) started from: its covariances
    # and its Laplace evidence are those of the mode up to that step.
    u_e, ll_e, g_e, W_e = expansion
    const = (ll_e - g_e * u_e - 0.5 * W_e * u_e.square()).sum((-1, -2))
    return LaplaceResult(
        mean=s, cov=cov, cross_cov=cross, log_likelihood=const + info_ll, n_newton=n_newton, converged=converged
    )
