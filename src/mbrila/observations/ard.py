"""mDLAG's variational Bayesian read-out with automatic relevance determination (ARD) of the loading columns.

Region ``r`` (``n_r`` neurons) sees all ``K`` latents, ``x^r_t ∈ R^K`` (each latent delayed as seen from r)::

    y^r_t = C^r x^r_t + d^r + e_t,     e_t ~ N(0, diag(φ^r)⁻¹)
    c^r_{·k} ~ N(0, (α^r_k)⁻¹ I),  α^r_k ~ Gamma(a_α, b_α),  φ^r_n ~ Gamma(a_φ, b_φ),  d^r ~ N(0, β⁻¹ I)

(Gamma in shape/rate form). The posterior is mean-field, ``q(X) q(C) q(α) q(φ) q(d)``: one Gaussian per row
``c_n`` (``K``-dimensional), a Gamma per ``α^r_k`` and per ``φ_n``, a Gaussian per ``d_n``. Given the moments of
``q(X)`` each factor has a closed-form update that maximises the evidence lower bound (ELBO) in that factor:

    q(d_n):   precision β + ⟨φ_n⟩ n_n,  mean ⟨φ_n⟩ Σ (y − ⟨c_n⟩ᵀx̄) / precision
    q(c_n):   Σ_n = (diag⟨α^r⟩ + ⟨φ_n⟩ XX_n)⁻¹,  mean Σ_n ⟨φ_n⟩ Σ x̄ (y − ⟨d_n⟩)
    q(α^r_k): shape a_α + n_r/2,  rate b_α + ½ Σ_{n∈r} ⟨c_nk²⟩
    q(φ_n):   shape a_φ + n_n/2,  rate b_φ + ½ Σ ⟨(y − c_nᵀx − d_n)²⟩   (⟨φ_n⟩ capped at 1/floor_n)

(sums over the entries where neuron ``n`` is observed; ``n_n`` counts them; ``XX_n = Σ ⟨x^r x^rᵀ⟩``). The cap on
``⟨φ_n⟩`` keeps every noise variance above a fraction of the neuron's variance, as mDLAG's code does; since the
ELBO is unimodal in each rate, the capped update still maximises it over the allowed range. For the latents the
read-out supplies the information form ``J = ⟨Cᵀ diag(φ) C⟩`` (per region, ``Σ_n ⟨φ_n⟩ ⟨c_n c_nᵀ⟩``) and
``h_t = ⟨C⟩ᵀ diag⟨φ⟩ (y_t − ⟨d⟩)``: with them ``E_q[log p(y | x)] = c + hᵀx − ½ xᵀJx`` exactly, which is what every
engine's ``q(X)`` update consumes (the dense GP, the circulant frequency approximation and the Kalman smoother).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mbrila.distributed import all_sum, dmean
from mbrila.observations.linear import floored_variance, observed_variance

#: A latent whose posterior mean power falls below this in every region is pruned (mDLAG's ``PRUNEX_TOL``).
PRUNE_TOL = 1e-6


def _gamma_kl_terms(a: Tensor, b: Tensor, a0: float, b0: float) -> Tensor:
    """``E_q[log p(α)] + H[q(α)]`` summed, ``q = Gamma(a, b)``, ``p = Gamma(a0, b0)`` (shape, rate)."""
    e_log = torch.digamma(a) - torch.log(b)
    e_val = a / b
    log_p = a0 * math.log(b0) - math.lgamma(a0) + (a0 - 1) * e_log - b0 * e_val
    entropy = a - torch.log(b) + torch.lgamma(a) + (1 - a) * torch.digamma(a)
    return (log_p + entropy).sum()


class ARDObservation(nn.Module):
    """Variational ARD read-out (see the module docstring).

    Parameters
    ----------
    y_dims : neurons per region.
    n_latents : ``K``, latents seen by every region.
    a_alpha, b_alpha : Gamma prior of the ARD precisions (mDLAG's default 1e-12, nearly non-informative).
    a_phi, b_phi : Gamma prior of the noise precisions.
    beta : precision of the Gaussian prior on the offsets ``d``.
    min_var_frac : the noise-variance floor as a fraction of each neuron's data variance (mDLAG: 1e-3).
    """

    C_mean: Tensor
    C_cov: Tensor
    alpha_a: Tensor
    alpha_b: Tensor
    phi_a: Tensor
    phi_b: Tensor
    d_mean: Tensor
    d_var: Tensor
    var_floor: Tensor
    support: Tensor
    pruned: Tensor
    _neuron_region: Tensor
    _neuron_cols: Tensor
    _region_size: Tensor

    #: What this read-out offers an engine (:mod:`mbrila.core.capabilities`).
    capabilities = frozenset({"ard_observation"})

    def __init__(
        self,
        y_dims: tuple[int, ...],
        n_latents: int,
        *,
        a_alpha: float = 1e-12,
        b_alpha: float = 1e-12,
        a_phi: float = 1e-12,
        b_phi: float = 1e-12,
        beta: float = 1e-12,
        min_var_frac: float = 1e-3,
    ) -> None:
        super().__init__()
        for name, v in (("a_alpha", a_alpha), ("b_alpha", b_alpha), ("a_phi", a_phi), ("b_phi", b_phi), ("beta", beta)):
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be positive and finite (a Gamma / Gaussian hyper-parameter); got {v}.")
        if not 0 <= min_var_frac < 1:
            raise ValueError(f"min_var_frac must lie in [0, 1); got {min_var_frac}.")
        self.y_dims = tuple(int(n) for n in y_dims)
        self.K = int(n_latents)
        self.latent_dims = (self.K,) * len(self.y_dims)
        self.a_alpha, self.b_alpha, self.a_phi, self.b_phi = float(a_alpha), float(b_alpha), float(a_phi), float(b_phi)
        self.beta = float(beta)
        self.min_var_frac = float(min_var_frac)
        N, R, K = sum(self.y_dims), len(self.y_dims), self.K
        self.register_buffer("C_mean", torch.zeros(N, R * K))
        self.register_buffer("C_cov", torch.eye(K).expand(N, K, K).clone())
        self.register_buffer("alpha_a", torch.ones(R))
        self.register_buffer("alpha_b", torch.ones(R, K))
        self.register_buffer("phi_a", torch.ones(N))
        self.register_buffer("phi_b", torch.ones(N))
        self.register_buffer("d_mean", torch.zeros(N))
        self.register_buffer("d_var", torch.ones(N))
        self.register_buffer("var_floor", torch.zeros(N))
        support = torch.zeros(N, R * K, dtype=torch.bool)
        for neurons, lat in self.region_blocks():
            support[neurons, lat] = True
        self.register_buffer("support", support)
        self.register_buffer("pruned", torch.zeros(K, dtype=torch.bool))
        # Each neuron's region and its region's K columns of C_mean: indices for the per-neuron views that every
        # update reads (derived from y_dims, so not part of the saved state).
        region = torch.repeat_interleave(torch.arange(R), torch.as_tensor(self.y_dims))
        self.register_buffer("_neuron_region", region, persistent=False)
        self.register_buffer("_neuron_cols", region[:, None] * K + torch.arange(K), persistent=False)
        self.register_buffer("_region_size", torch.as_tensor(self.y_dims), persistent=False)

    # ------------------------------------------------------------------ structure and expectations
    def region_blocks(self) -> list[tuple[slice, slice]]:
        """``(neuron slice, latent slice)`` per region."""
        out, n0 = [], 0
        for r, n in enumerate(self.y_dims):
            out.append((slice(n0, n0 + n), slice(r * self.K, (r + 1) * self.K)))
            n0 += n
        return out

    def _region_of_neuron(self) -> Tensor:
        return self._neuron_region

    def region_loadings(self) -> Tensor:
        """``(N, K)`` posterior mean loadings of every neuron on its own region's ``K`` columns."""
        return self.C_mean.gather(1, self._neuron_cols)

    def alpha_mean(self) -> Tensor:
        """``⟨α⟩`` ``(R, K)``: the ARD precisions (large = the latent is switched off in that region; ``inf`` once
        the latent is pruned)."""
        alpha = self.alpha_a[:, None] / self.alpha_b
        return alpha.masked_fill(self.pruned[None, :], float("inf"))

    @torch.no_grad()
    def prune(self, mean: Tensor, tol: float = PRUNE_TOL) -> Tensor:
        """Remove latents whose posterior means are negligible in every region (mDLAG's rule).

        A latent is pruned when ``mean_{trials, t} x̄^r_k(t)² < tol`` for every region ``r`` (``mean``: ``(B, T, R·K)``
        posterior means). Its loadings become exactly zero with zero variance, so it drops out of ``q(X)``'s
        read-out and out of the ELBO (the ARD terms of a switched-off column only creep towards their limit).
        Returns the bool ``(K,)`` of latents pruned by this call.
        """
        power = dmean(mean**2, (0, 1)).reshape(len(self.y_dims), self.K)
        new = (power < tol).all(0) & ~self.pruned
        if bool(new.any()):
            self.pruned |= new
            self._zero_pruned()
        return new

    def _zero_pruned(self) -> None:
        off = self.pruned
        cols = off.repeat(len(self.y_dims))
        self.C_mean[:, cols] = 0.0
        self.C_cov[:, off, :] = 0.0
        self.C_cov[:, :, off] = 0.0

    def phi_mean(self) -> Tensor:
        """``⟨φ⟩`` ``(N,)``: the noise precisions."""
        return self.phi_a / self.phi_b

    def c_second(self) -> Tensor:
        """``⟨c_n c_nᵀ⟩ = Σ_n + μ_n μ_nᵀ`` ``(N, K, K)``."""
        mu = self.region_loadings()
        return self.C_cov + mu[:, :, None] * mu[:, None, :]

    def mean_loadings(self) -> tuple[Tensor, Tensor]:
        """``(⟨C⟩, ⟨d⟩)``: the loadings ``(N, R·K)`` and offsets ``(N,)`` predictions are made with."""
        return self.C_mean, self.d_mean

    def noise_variance(self) -> Tensor:
        """``1 / ⟨φ⟩`` ``(N,)``."""
        return self.phi_b / self.phi_a

    def at_floor(self, rtol: float = 1e-6) -> Tensor:
        """Bool ``(N,)``: neurons whose noise precision sits on its cap (noise variance on the floor)."""
        return self.noise_variance() <= self.var_floor * (1.0 + rtol)

    def set_floor(self, y: Tensor, mask: Tensor | None) -> None:
        """Set the noise floor from the data: ``min_var_frac ·`` each neuron's variance over observed entries (a
        constant neuron's variance is floored first, :func:`~mbrila.observations.linear.floored_variance`)."""
        self.var_floor = (self.min_var_frac * floored_variance(observed_variance(y, mask))).to(self.phi_b)

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def initialize_from(self, C: Tensor, d: Tensor, R: Tensor, counts: Tensor) -> None:
        """Start from point estimates: ``⟨C⟩ = C`` (block-structured ``(N, R·K)``), ``⟨d⟩ = d``, ``⟨φ⟩ = 1/R``.

        ``counts (N,)`` are the observed entries per neuron. The ARD precisions start at ``n_r / Σ_n c_nk²``
        (mDLAG's scaling); the loading covariances at ``(diag⟨α⟩ + ⟨φ_n⟩ n_n I)⁻¹`` (unit-variance latents).
        """
        self.pruned.zero_()
        self.C_mean.copy_(C * self.support)
        phi = 1.0 / R
        self.phi_a.copy_(self.a_phi + 0.5 * counts)
        self.phi_b.copy_(self.phi_a / phi)
        self.d_mean.copy_(d)
        self.d_var.copy_(1.0 / (self.beta + phi * counts))
        mu = self.region_loadings()
        eye = torch.eye(self.K, dtype=C.dtype, device=C.device)
        for r, (neurons, _) in enumerate(self.region_blocks()):
            n_r = neurons.stop - neurons.start
            col = (mu[neurons] ** 2).sum(0).clamp_min(torch.finfo(C.dtype).tiny)
            self.alpha_a[r] = self.a_alpha + 0.5 * n_r
            self.alpha_b[r] = self.alpha_a[r] * col / n_r
            prec = torch.diag(self.alpha_mean()[r]) + (phi * counts)[neurons, None, None] * eye
            self.C_cov[neurons] = torch.linalg.inv(prec)

    # ------------------------------------------------------------------ what q(X) needs
    def information(
        self,
        y: Tensor,
        mask: Tensor | None,
        neurons: Tensor | None = None,
        stats: dict[str, Tensor] | None = None,
        columns: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(J, h, c)`` with ``E_q[log p(y | x)] = c + Σ_t (h_tᵀ x_t − ½ x_tᵀ J_t x_t)`` per trial.

        ``J`` is ``(R·K, R·K)`` (block-diagonal over regions) without a mask, else ``(B, T, R·K, R·K)``; ``h``
        ``(B, T, R·K)``; ``c (B,)``. ``neurons`` (bool ``(N,)``) restricts the read-out to some neurons, and then
        ``y``/``mask`` hold only those. ``stats`` (:meth:`data_statistics` of the same ``y``) saves recomputing
        the per-trial sums. ``columns`` (long, into ``R·K``) returns ``J`` and ``h`` on those latent columns only
        (the others must have zero loadings, as pruned latents do, so that ``c`` is unchanged).
        """
        keep = torch.ones(self.C_mean.shape[0], dtype=torch.bool, device=y.device) if neurons is None else neurons
        C, d, dv = self.C_mean[keep], self.d_mean[keep], self.d_var[keep]
        cols = torch.arange(C.shape[1], device=y.device) if columns is None else columns
        C = C[:, cols]
        phi, log_phi = self.phi_mean()[keep], (torch.digamma(self.phi_a) - torch.log(self.phi_b))[keep]
        cc = self.c_second()[keep]
        region = self._region_of_neuron()[keep]
        K_all = self.C_mean.shape[1]
        # ⟨φ_n⟩⟨c_n c_nᵀ⟩ placed on neuron n's own region block, flattened to (n, Kx²).
        outer = torch.zeros(
            C.shape[0], len(self.y_dims), self.K, len(self.y_dims), self.K, dtype=y.dtype, device=y.device
        )
        idx = torch.arange(C.shape[0], device=y.device)
        outer[idx, region, :, region, :] = cc
        outer = outer.reshape(C.shape[0], K_all, K_all)[:, cols][:, :, cols]
        Kx = cols.shape[0]
        outer = outer.reshape(C.shape[0], Kx * Kx)
        log_term = 0.5 * (log_phi - math.log(2 * math.pi))
        dd = d**2 + dv
        if mask is None:
            # No missing entries: one GEMM for h, per-trial sums for c; nothing of the data's size is copied.
            Cp = C * phi[:, None]
            h = y @ Cp - d @ Cp
            T = y.shape[1]
            if stats is not None and neurons is None:
                sy, sy2 = stats["trial_sum_y"], stats["trial_sum_y2"]
            else:
                sy, sy2 = y.sum(1), (y * y).sum(1)  # (B, n)
            c = (T * log_term - 0.5 * phi * (sy2 - 2 * d * sy + T * dd)).sum(-1)
            J = (phi[:, None] * outer).sum(0).reshape(Kx, Kx)
            return J, h, c
        w = mask.to(y.dtype)
        resid = (y - d) * w
        h = (resid * phi) @ C
        quad = y**2 - 2 * y * d + dd
        c = (w * (log_term - 0.5 * phi * quad)).sum((-1, -2))
        B, T, n = y.shape
        J = ((w * phi).reshape(B * T, n) @ outer).reshape(B, T, Kx, Kx)
        return J, h, c

    # ------------------------------------------------------------------ closed-form updates
    def data_statistics(self, y: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        """Sums over observed entries that every update reuses: per neuron ``count``, ``sum_y``, ``sum_y2``
        ``(N,)`` (over every process's trials in a data-parallel fit), and per trial and neuron ``trial_sum_y``,
        ``trial_sum_y2`` ``(B, N)`` (this process's)."""
        w = _weights(y, mask)
        ty, ty2 = (y * w).sum(1), (y**2 * w).sum(1)
        count, sum_y, sum_y2 = all_sum(w.sum((0, 1)), ty.sum(0), ty2.sum(0))
        return {
            "count": count,
            "sum_y": sum_y,
            "sum_y2": sum_y2,
            "trial_sum_y": ty,
            "trial_sum_y2": ty2,
        }

    def _moments(self, y: Tensor, mask: Tensor | None, Ex: Tensor, Exx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per neuron: ``Σ x̄`` ``(N, K)``, ``Σ x̄ y`` ``(N, K)`` and ``XX_n = Σ ⟨x xᵀ⟩`` ``(N, K, K)`` of its region,
        summed over every process's trials in a data-parallel fit (``Exx`` holds this process's)."""
        K = self.K
        blocks = self.region_blocks()
        if mask is None:
            N, Kx = y.shape[-1], Ex.shape[-1]
            full = y.reshape(-1, N).mT @ Ex.reshape(-1, Kx)  # (N, R·K): one GEMM for every region
            full, tot, XXs = all_sum(full, Ex.sum((0, 1)), Exx.sum(0))
            Sx = torch.cat([tot[lat].expand(n.stop - n.start, K) for n, lat in blocks])
            Sxy = torch.cat([full[n, lat] for n, lat in blocks])
            XX = torch.cat([XXs[lat, lat].expand(n.stop - n.start, K, K) for n, lat in blocks])
            return Sx, Sxy, XX
        w = mask.to(y.dtype)
        wy = w * y
        Sx_l, Sxy_l, XX_l = [], [], []
        for neurons, lat in blocks:
            xr = Ex[..., lat]
            Sx_l.append(torch.einsum("btn,btk->nk", w[..., neurons], xr))
            Sxy_l.append(torch.einsum("btn,btk->nk", wy[..., neurons], xr))
            XX_l.append(torch.einsum("btn,btij->nij", w[..., neurons], Exx[..., lat, lat]))
        Sx, Sxy, XX = all_sum(torch.cat(Sx_l), torch.cat(Sxy_l), torch.cat(XX_l))
        return Sx, Sxy, XX

    @torch.no_grad()
    def update(
        self,
        y: Tensor,
        mask: Tensor | None,
        Ex: Tensor,
        Exx: Tensor,
        stats: dict[str, Tensor],
        sweeps: int = 1,
        tol: float = 0.0,
    ) -> int:
        """The closed-form updates of ``q(d), q(C), q(α), q(φ)`` in that order (module docstring), repeated.

        Each sweep raises the ELBO for the fixed ``q(X)``, so more sweeps move the read-out further along the slow
        coupled ``q(C) ↔ q(α)`` direction of a column that ARD is switching off, at the cost of ``O(N K³)`` per
        sweep (the moments of ``q(X)`` are computed once).

        Parameters
        ----------
        y, mask : the data ``(B, T, N)``.
        Ex : ``(B, T, R·K)`` posterior means of the region latents.
        Exx : trial-summed ``Σ_b ⟨x_t x_tᵀ⟩`` ``(T, R·K, R·K)`` (or already summed over time, ``(1, R·K, R·K)``)
            without a mask, else per trial ``(B, T, R·K, R·K)``; only the region blocks are read.
        stats : :meth:`data_statistics` of ``y``.
        sweeps : most sweeps.
        tol : stop once a sweep raises the read-out's part of the ELBO (:meth:`readout_objective`) by at most
            ``tol`` times its magnitude.

        Returns the sweeps taken.
        """
        moments = self._moments(y, mask, Ex, Exx)
        previous = float(self.readout_objective(moments, stats)) if sweeps > 1 else 0.0
        for done in range(1, sweeps + 1):
            # One sweep, keeping what the objective needs of the state it leaves (nothing changes ⟨c cᵀ⟩ or q(C)
            # after update_c, nor the residuals after update_phi): the objective then costs no second pass.
            self.update_d(moments, stats)
            logdet = self.update_c(moments)
            cc = self.c_second()
            self.update_alpha(cc)
            sq = self.expected_sq_residual(moments, stats, cc)
            self.update_phi(moments, stats, sq)
            if done == sweeps:
                break
            value = float(self.readout_objective(moments, stats, cc, sq, logdet))
            if value - previous <= tol * abs(value):
                break
            previous = value
        return done

    @torch.no_grad()
    def rescale_latents(self, quad: Tensor, count: Tensor) -> Tensor:
        """Parameter-expanded step: rescale each latent and its loadings together, ``x_k → s_k x_k``,
        ``c_·k → c_·k / s_k``, with ``s_k`` maximising the ELBO along that direction; returns ``s (K,)``.

        The likelihood term is unchanged by the pair of scalings. With ``q(α)`` fixed the ELBO changes by::

            Δ(s) = −½ (s² − 1) A_k + (n_k − N) log s − ½ W_k (s⁻² − 1),   W_k = Σ_n ⟨α_{r(n)k}⟩ ⟨c_nk²⟩

        (the GP prior's quadratic, ``q(X)``'s entropy, ``p(C | α)`` and ``q(C)``'s entropy), which is concave in
        ``log s`` with the maximiser ``s² = [(n_k − N) + √((n_k − N)² + 4 A_k W_k)] / (2 A_k)``. EM moves along this
        direction slowly (the loadings shrink while the latents grow, a little each iteration); the step takes it
        in one move. The caller scales ``q(X)``'s moments by ``s``; pruned latents keep ``s = 1``.

        Parameters
        ----------
        quad : ``A_k = Σ_trials E_q[z_kᵀ K_k⁻¹ z_k]`` ``(K,)``, the prior quadratic of each latent under ``q(X)``.
        count : ``n_k`` ``(K,)``, the latent entries that quadratic sums over (trials × bins × regions).
        """
        N = self.C_mean.shape[0]
        alpha = self.alpha_a[:, None] / self.alpha_b  # (R, K); finite also for pruned latents
        cc = self.c_second().diagonal(dim1=-2, dim2=-1)  # (N, K)
        W = (alpha[self._neuron_region] * cc).sum(0)
        m = count - N
        live = ~self.pruned & (quad > 0)
        A = torch.where(live, quad, torch.ones_like(quad))
        s2 = (m + torch.sqrt(m * m + 4 * A * W)) / (2 * A)
        s = torch.where(live & (s2 > 0), torch.sqrt(s2.clamp_min(torch.finfo(s2.dtype).tiny)), torch.ones_like(s2))
        self.C_mean /= s.repeat(len(self.y_dims))  # columns r·K + k
        self.C_cov = self.C_cov / (s[:, None] * s[None, :])
        return s

    def update_d(self, moments: tuple[Tensor, Tensor, Tensor], stats: dict[str, Tensor]) -> None:
        """``q(d)`` given ``moments = _moments(y, mask, Ex, Exx)``."""
        Sx = moments[0]
        phi = self.phi_mean()
        prec = self.beta + phi * stats["count"]
        self.d_var = 1.0 / prec
        self.d_mean = phi * (stats["sum_y"] - (self.region_loadings() * Sx).sum(-1)) / prec

    def update_c(self, moments: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """``q(C)`` (pruned columns stay exactly zero); returns ``log|Σ_n|`` ``(N,)`` over the unpruned columns."""
        Sx, Sxy, XX = moments
        phi = self.phi_mean()
        alpha = self.alpha_a[:, None] / self.alpha_b
        region = self._region_of_neuron()
        on = (~self.pruned).to(phi.dtype)
        keep = on[:, None] * on[None, :]
        # Pruned columns: identity rows/columns in the precision, then zeroed (their loadings are fixed at 0).
        prec = torch.diag_embed(torch.where(self.pruned, 1.0, alpha)[region]) + phi[:, None, None] * XX * keep
        L, info = torch.linalg.cholesky_ex(prec)
        if bool((info != 0).any()):
            raise ValueError("the loadings' posterior precision is not positive definite; use float64.")
        cov = torch.cholesky_inverse(L) * keep
        self.C_cov = 0.5 * (cov + cov.mT)
        rhs = phi[:, None] * (Sxy - self.d_mean[:, None] * Sx) * on
        mu = (self.C_cov @ rhs[..., None]).squeeze(-1)
        self.C_mean.scatter_(1, self._neuron_cols, mu)
        # The precision is block-diagonal between unpruned and pruned columns (identity there, log 1 = 0), so the
        # covariance's unpruned block has log-determinant −log|precision|.
        return -2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def update_alpha(self, cc: Tensor | None = None) -> None:
        """``q(α)`` (``cc``: :meth:`c_second`, when the caller has it)."""
        cc = (self.c_second() if cc is None else cc).diagonal(dim1=-2, dim2=-1)  # (N, K)
        sums = cc.new_zeros(self.alpha_b.shape).index_add_(0, self._neuron_region, cc)  # Σ_{n∈r} ⟨c_nk²⟩
        self.alpha_a = self.a_alpha + 0.5 * self._region_size.to(self.alpha_a)
        # A pruned column keeps its last rate: it no longer enters the model (alpha_mean reports inf).
        self.alpha_b = torch.where(self.pruned, self.alpha_b, self.b_alpha + 0.5 * sums)

    def expected_sq_residual(
        self, moments: tuple[Tensor, Tensor, Tensor], stats: dict[str, Tensor], cc: Tensor | None = None
    ) -> Tensor:
        """``Σ ⟨(y − c_nᵀx − d_n)²⟩`` per neuron ``(N,)`` over its observed entries (``cc``: :meth:`c_second`, when
        the caller has it)."""
        Sx, Sxy, XX = moments
        mu, d = self.region_loadings(), self.d_mean
        dd = d**2 + self.d_var
        data = stats["sum_y2"] - 2 * d * stats["sum_y"] + stats["count"] * dd
        cross = 2 * (mu * (Sxy - d[:, None] * Sx)).sum(-1)
        quad = ((self.c_second() if cc is None else cc) * XX).sum((-1, -2))
        return data - cross + quad

    def update_phi(
        self, moments: tuple[Tensor, Tensor, Tensor], stats: dict[str, Tensor], sq: Tensor | None = None
    ) -> None:
        """``q(φ)`` with ``⟨φ_n⟩`` capped at ``1 / var_floor_n`` (``sq``: :meth:`expected_sq_residual`, when the
        caller has it)."""
        self.phi_a = self.a_phi + 0.5 * stats["count"]
        rate = self.b_phi + 0.5 * (self.expected_sq_residual(moments, stats) if sq is None else sq)
        self.phi_b = torch.maximum(rate, self.phi_a * self.var_floor)

    # ------------------------------------------------------------------ ELBO pieces
    def expected_log_likelihood(
        self, y: Tensor, mask: Tensor | None, Ex: Tensor, Exx: Tensor, stats: dict[str, Tensor]
    ) -> Tensor:
        """``E_q[log p(y | x, C, d, φ)]`` summed over observed entries, for any ``q(X)`` with these moments."""
        return self._expected_log_likelihood(self._moments(y, mask, Ex, Exx), stats)

    def _expected_log_likelihood(
        self,
        moments: tuple[Tensor, Tensor, Tensor],
        stats: dict[str, Tensor],
        cc: Tensor | None = None,
        sq: Tensor | None = None,
    ) -> Tensor:
        log_phi = torch.digamma(self.phi_a) - torch.log(self.phi_b)
        sq = self.expected_sq_residual(moments, stats, cc) if sq is None else sq
        n = stats["count"]
        return (0.5 * n * (log_phi - math.log(2 * math.pi)) - 0.5 * self.phi_mean() * sq).sum()

    def readout_objective(
        self,
        moments: tuple[Tensor, Tensor, Tensor],
        stats: dict[str, Tensor],
        cc: Tensor | None = None,
        sq: Tensor | None = None,
        logdet: Tensor | None = None,
    ) -> Tensor:
        """The ELBO terms that depend on ``q(C), q(α), q(φ), q(d)`` for a fixed ``q(X)`` (given by ``moments``):
        the expected log-likelihood plus :meth:`prior_terms` (``cc``, ``sq``, ``logdet``: :meth:`c_second`,
        :meth:`expected_sq_residual` and what :meth:`update_c` returned, when the caller has them)."""
        cc = self.c_second() if cc is None else cc
        return self._expected_log_likelihood(moments, stats, cc, sq) + self.prior_terms(cc, logdet)

    def prior_terms(self, cc: Tensor | None = None, logdet: Tensor | None = None) -> Tensor:
        """``Σ E_q[log p(θ)] + H[q(θ)]`` over ``C, α, φ, d`` (the ELBO's parameter part; ``cc``: :meth:`c_second`
        and ``logdet``: what :meth:`update_c` returned, when the caller has them)."""
        on = ~self.pruned  # pruned columns are out of the model
        K = int(on.sum())
        log_alpha = (torch.digamma(self.alpha_a)[:, None] - torch.log(self.alpha_b))[:, on]  # (R, K_on)
        alpha = (self.alpha_a[:, None] / self.alpha_b)[:, on]
        region = self._region_of_neuron()
        cc = (self.c_second() if cc is None else cc).diagonal(dim1=-2, dim2=-1)[:, on]
        if logdet is None:
            logdet = torch.linalg.slogdet(self.C_cov[:, on][:, :, on])[1]
        c_terms = (0.5 * log_alpha[region].sum(-1) - 0.5 * (alpha[region] * cc).sum(-1) + 0.5 * logdet + 0.5 * K).sum()
        a_shape = self.alpha_a[:, None].expand_as(self.alpha_b)[:, on]
        a_terms = _gamma_kl_terms(a_shape, self.alpha_b[:, on], self.a_alpha, self.b_alpha)
        p_terms = _gamma_kl_terms(self.phi_a, self.phi_b, self.a_phi, self.b_phi)
        dd = self.d_mean**2 + self.d_var
        d_terms = (0.5 * math.log(self.beta) - 0.5 * self.beta * dd + 0.5 * torch.log(self.d_var) + 0.5).sum()
        return c_terms + a_terms + p_terms + d_terms


def _weights(y: Tensor, mask: Tensor | None) -> Tensor:
    """Observed entries as 0/1 in ``y``'s dtype (all ones without a mask)."""
    return torch.ones_like(y) if mask is None else mask.to(y.dtype)
