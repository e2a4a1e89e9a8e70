"""A second-order M-step for the GP parameters of dense-GP models: guarded Fisher scoring.

With the posterior fixed, the timescales and delays ``θ`` enter the expected complete-data objective only through

    F(θ) = Σ_b −½ [n log|K_b(θ)| + tr(K_b(θ)⁻¹ S_b)],     S_b = Σ_trials E[z_b z_bᵀ]

(``n`` trials). Its gradient and Fisher information are, for ``D_a = ∂K_b/∂θ_a``::

    g_a  = ½ Σ_b tr((K_b⁻¹ S_b K_b⁻¹ − n K_b⁻¹) D_a)
    I_ac = (n/2) Σ_b tr(K_b⁻¹ D_a K_b⁻¹ D_c)

Each block depends on a handful of parameters (its kernel's and its latent's delays), so ``D_a`` comes from
differentiating the covariance twice in reverse mode (cheap: it is elementwise in the lags) and one step ``θ ← θ + s I⁻¹ g`` costs about
as much as one first-order step through the Cholesky factor — but lands near the maximiser of ``F`` instead of a
fixed distance along the gradient. The step length ``s`` starts at 1 and is halved until ``F`` rises (at most
``max_halvings`` times; otherwise the parameters are left unchanged), so EM stays monotone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mbrila.inference.dense import PriorFactors

#: Blocks with more free scalar parameters than this (e.g. time-varying delay trajectories) are left to the
#: first-order optimiser: their Fisher information would cost one ``(V·T)³`` product per parameter.
MAX_SCORING_PARAMETERS = 16


def _block_covariance(blk: nn.Module, delay: nn.Module, k: int | None, T: int) -> Tensor:
    return blk.covariance(None if k is None else delay.latent_delays(k, T), T)  # type: ignore[operator]


def _directions(blk: nn.Module, delay: nn.Module, k: int | None, T: int) -> list[tuple[nn.Parameter, int]]:
    """The scalar parameters ``(parameter, flat index)`` that ``K_b`` depends on: every free entry of the block's
    own parameters, and the entries of the delay parameters that move latent ``k``'s delays (found by a
    reverse-mode probe of the delays, which are elementwise functions of their parameters)."""
    out: list[tuple[nn.Parameter, int]] = [
        (p, i) for p in blk.parameters() if p.requires_grad for i in range(p.numel())
    ]
    if k is None:
        return out
    shared = [p for p in delay.parameters() if p.requires_grad]
    if not shared:
        return out
    probe = delay.latent_delays(k, T).sum()  # type: ignore[operator]
    for p, grad in zip(shared, torch.autograd.grad(probe, shared, allow_unused=True), strict=True):
        if grad is not None:
            out += [(p, int(i)) for i in torch.nonzero(grad.reshape(-1)).flatten()]
    return out


def _derivatives(K: Tensor, dirs: list[tuple[nn.Parameter, int]]) -> list[Tensor]:
    """``∂K/∂θ_a`` (``(M, M)`` each) for the scalar directions ``dirs`` by the double-backward trick: with
    ``g(u) = (∂K/∂θ)ᵀ u`` linear in ``u``, ``∂K/∂θ_a = ∂g_a/∂u``. Reverse mode only (the covariance is
    elementwise in the lags, so every pass is cheap)."""
    params = list({id(p): p for p, _ in dirs}.values())
    u = torch.zeros_like(K, requires_grad=True)
    # g(u) as the gradient of the scalar Σ K∘u: passing u as grad_outputs instead would make torch import its
    # symbolic-shapes machinery (sympy; seconds of a fresh process) to check the shapes.
    grads = torch.autograd.grad((K * u).sum(), params, create_graph=True, allow_unused=True)
    by_id = {id(p): g for p, g in zip(params, grads, strict=True)}
    out = []
    for p, i in dirs:
        g = by_id[id(p)]
        if g is None or not g.requires_grad:
            out.append(torch.zeros_like(K))
            continue
        (d,) = torch.autograd.grad(g.reshape(-1)[i], u, retain_graph=True, allow_unused=True)
        out.append(torch.zeros_like(K) if d is None else d)
    return out


def scoring_applicable(model: Any) -> bool:
    """Whether every active block has at most :data:`MAX_SCORING_PARAMETERS` free scalars and the delay has no
    prior of its own (Fisher scoring here maximises ``F`` alone)."""
    if not getattr(model.delay, "constant", True):
        return False
    skip = set(model.inactive_blocks())
    return all(
        len(_directions(blk, model.delay, k, model.T)) <= MAX_SCORING_PARAMETERS
        for b, (blk, _, k) in enumerate(model.blocks())
        if b not in skip
    )


def _block_objective(K: Tensor, S: Tensor, n: int, key: int, cache: PriorFactors) -> tuple[float, Tensor | None]:
    """``(−½ [n log|K| + tr(K⁻¹ S)], K⁻¹)`` up to constants; ``(-inf, None)`` when ``K`` is not positive definite."""
    got = cache.get(key, K)
    if got is None:
        return float("-inf"), None
    Kinv, logdet = got
    return float(-0.5 * (n * logdet + (Kinv * S).sum())), Kinv


def fisher_scoring(
    model: Any,
    block_second: list[Tensor],
    n: int,
    T: int,
    n_steps: int = 1,
    max_halvings: int = 8,
    cache: PriorFactors | None = None,
) -> int:
    """Raise ``F`` (module docstring) by ``n_steps`` guarded Fisher-scoring steps; returns the steps accepted.

    Parameters
    ----------
    model : a dense-GP model (``blocks()``, ``delay``, ``inactive_blocks``).
    block_second : per block, ``S_b``.
    n : number of trials summed into ``S_b``; T : trial length.
    cache : the fit's prior factorisations, shared with its E-steps (keyed by block index).
    """
    cache = PriorFactors() if cache is None else cache
    skip = set(model.inactive_blocks())
    blocks = [(b, blk, k) for b, (blk, _, k) in enumerate(model.blocks()) if b not in skip]
    accepted = 0

    def objective() -> float:
        with torch.no_grad():
            return sum(
                _block_objective(_block_covariance(blk, model.delay, k, T), block_second[b], n, b, cache)[0]
                for b, blk, k in blocks
            )

    for _ in range(n_steps):
        index: dict[tuple[int, int], int] = {}  # (id of the parameter, flat index) → position in θ
        entries: list[tuple[nn.Parameter, int]] = []
        terms = []
        for b, blk, k in blocks:
            dirs = _directions(blk, model.delay, k, T)
            K = _block_covariance(blk, model.delay, k, T)
            derivs = _derivatives(K, dirs)
            pos = []
            for p, i in dirs:
                if (id(p), i) not in index:
                    index[(id(p), i)] = len(entries)
                    entries.append((p, i))
                pos.append(index[(id(p), i)])
            terms.append((b, K.detach(), pos, [d.detach() for d in derivs]))
        if not entries:
            return accepted
        with torch.no_grad():
            ref = terms[0][1]
            g = ref.new_zeros(len(entries))
            info = ref.new_zeros(len(entries), len(entries))
            f0 = 0.0
            for b, K, pos, derivs in terms:
                f_b, Kinv = _block_objective(K, block_second[b], n, b, cache)
                if Kinv is None:
                    return accepted
                f0 += f_b
                KS = Kinv @ block_second[b]
                A = [Kinv @ D for D in derivs]
                for i, a in enumerate(pos):
                    # g_a = ½ tr(K⁻¹ S K⁻¹ D_a) − (n/2) tr(K⁻¹ D_a);  I_ac = (n/2) tr(K⁻¹ D_a K⁻¹ D_c).
                    g[a] += 0.5 * (KS * A[i].mT).sum() - 0.5 * n * A[i].diagonal().sum()
                    for j in range(i + 1):
                        val = 0.5 * n * (A[i] * A[j].mT).sum()
                        info[a, pos[j]] += val
                        if pos[j] != a:
                            info[pos[j], a] += val
            damping = 1e-6 * info.diagonal().abs().max().clamp_min(1e-12)
            step = torch.linalg.solve(info + damping * torch.eye(len(entries), dtype=info.dtype, device=info.device), g)
            before = [p.detach().reshape(-1)[i].clone() for p, i in entries]
            scale, ok = 1.0, False
            for _ in range(max_halvings + 1):
                for (p, i), b0, s in zip(entries, before, step, strict=True):
                    p.view(-1)[i] = b0 + scale * s
                if objective() >= f0:
                    ok = True
                    break
                scale *= 0.5
            if not ok:
                for (p, i), b0 in zip(entries, before, strict=True):
                    p.view(-1)[i] = b0
                return accepted
            accepted += 1
    return accepted
