"""Synthetic multi-region recordings with ground truth, sampled from the exact (dense) delayed GP.

Generative model (DESIGN.md §2), for trials ``i``, times ``t = 0 … T−1`` (bins) and regions ``r = 0 … R−1``:

* across latent ``k``: one GP seen by region ``r`` at time ``s_k^r(t) = t − δ_k^r(t)``, so that
  ``Cov(x_k^r(t), x_k^s(t')) = k_k(s_k^r(t) − s_k^s(t'))`` (unit variance, region 0 the reference, ``δ^0 ≡ 0``);
* within latent ``j`` of region ``r``: an independent GP with ``Cov(x_j^r(t), x_j^r(t')) = k_j^r(t − t')``;
* observation: ``y_t^r = C^r x_t^r + d^r + e``, ``e ~ N(0, R^r)``, with ``x_t^r`` = (across latents as seen by
  ``r``, then ``r``'s within latents), ``C^r`` with orthonormal columns, ``d = 0`` and ``R = 1/snr`` per neuron;
* or spike counts (``observation="poisson"``): with the same latents and loadings, neuron ``n``'s latent drive
  ``u_n = (C x)_n`` has prior variance ``s_n² = Σ_k C_nk²``, its log rate is
  ``log λ_tn = log b_n − g²/2 + g · u_tn / s_n`` (so ``E[λ_tn] = b_n`` and ``sd(log λ_tn) = g``) and
  ``y_tn ~ Poisson(λ_tn)``, with base rates ``b_n`` (spikes per bin) and gain ``g``.

Latents are drawn from the full joint Gaussian (one ``(R·T) × (R·T)`` covariance per across latent, Cholesky
factor, all trials at once) — never from a state-space approximation — so the ground truth does not favour any
inference engine. All sampling is float64 on the CPU from one seeded ``torch.Generator``, then cast.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.kernels import BaseKernel, RBFKernel
from mbrila.synthetic.delay_shapes import DELAY_SHAPES, make_delays

#: Added to the diagonal of every latent covariance before its Cholesky factorisation (a delayed GP on a grid is
#: numerically rank-deficient: integer delays make region views exact copies of each other).
JITTER = 1e-6

#: Observation models of :class:`MultiRegionScenario`: Gaussian noise on ``C x + d``, or Poisson spike counts.
OBSERVATIONS = ("gaussian", "poisson")


@dataclass
class ScenarioTruth:
    """Ground truth of one sampled scenario (tensors in the dtype/device asked of :meth:`MultiRegionScenario.sample`).

    Attributes
    ----------
    delays : ``(T, n_regions, n_across)`` in bins; column 0 (the reference) is zero.
    latents_across : ``(trials, T, n_regions, n_across)``: ``[..., r, k]`` is latent ``k`` as seen by region ``r``.
    latents_within : per region ``(trials, T, n_within_r)``.
    C : per region ``(n_r, n_across + n_within_r)``, orthonormal columns (across first, then within). For
        Poisson observations, the loadings of the log rate: rows ``g · C_n / s_n`` of the orthonormal loadings.
    d, R : ``(N,)`` offsets (zero) and noise variances (``1/snr``). For Poisson observations, ``d`` is the log-rate
        offset ``log b_n − g²/2`` and ``R`` is NaN: there is no Gaussian noise, the counts are Poisson given ``λ``.
    timescales_across : ``(n_across,)`` kernel timescales in bins (NaN for a kernel without ``timescale``).
    timescales_within : per region ``(n_within_r,)``.
    noise_floor_rmse : ``sqrt(1/snr)``, the RMSE of a perfect reconstruction against the noisy data. For Poisson
        observations ``sqrt(mean λ)``, the RMSE of predicting the counts by their true rates.
    clean : ``(trials, T, N)`` noise-free data ``C x + d``. For Poisson observations, the true rates
        ``λ = exp(C x + d)`` (expected counts per bin).
    """

    delays: Tensor
    latents_across: Tensor
    latents_within: list[Tensor]
    C: list[Tensor]
    d: Tensor
    R: Tensor
    timescales_across: Tensor
    timescales_within: list[Tensor]
    noise_floor_rmse: float
    clean: Tensor

    @property
    def n_regions(self) -> int:
        return int(self.delays.shape[1])

    def region_latents(self, r: int) -> Tensor:
        """``(trials, T, n_across + n_within_r)``: the latents region ``r``'s neurons load on, in ``C[r]``'s order."""
        return torch.cat([self.latents_across[:, :, r, :], self.latents_within[r]], dim=-1)

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> ScenarioTruth:
        """A copy with every tensor cast to ``dtype`` and moved to ``device``."""

        def cv(x: Tensor) -> Tensor:
            return x.to(dtype=dtype or x.dtype, device=device or x.device)

        return ScenarioTruth(
            delays=cv(self.delays),
            latents_across=cv(self.latents_across),
            latents_within=[cv(x) for x in self.latents_within],
            C=[cv(c) for c in self.C],
            d=cv(self.d),
            R=cv(self.R),
            timescales_across=cv(self.timescales_across),
            timescales_within=[cv(x) for x in self.timescales_within],
            noise_floor_rmse=self.noise_floor_rmse,
            clean=cv(self.clean),
        )


def _timescale_of(kernel: BaseKernel) -> float:
    ts = getattr(kernel, "timescale", None)
    if isinstance(ts, Tensor) and ts.numel() == 1:
        return float(ts.detach())
    if isinstance(ts, (int, float)):
        return float(ts)
    return float("nan")


def _eval_kernels(kernels: Sequence[BaseKernel], tau: Tensor) -> Tensor:
    """``(len(kernels), M, M)``: ``kernels[i].cov(tau[i])`` in float64 (``tau`` is ``(len, M, M)`` or ``(M, M)``)."""
    out = []
    for i, kern in enumerate(kernels):  # a handful of kernels; each call is vectorised over the M² lags
        # A float64 copy, so the caller's kernel is neither cast nor rounded to its float32 parameters.
        k64 = copy.deepcopy(kern).to(torch.float64)
        lags = tau[i] if tau.ndim == 3 else tau
        out.append(k64.cov(lags).to(torch.float64))
    return torch.stack(out)


def _sample_gaussians(cov: Tensor, n: int, gen: torch.Generator, what: str) -> Tensor:
    """``(G, M, n)`` draws ``L z`` from ``N(0, cov[g] + JITTER·I)`` for a batch of covariances ``(G, M, M)``."""
    M = cov.shape[-1]
    L, info = torch.linalg.cholesky_ex(cov + JITTER * torch.eye(M, dtype=cov.dtype))
    if bool((info != 0).any()):
        bad = int(torch.nonzero(info)[0])
        raise ValueError(
            f"the covariance of {what} {bad} is not positive definite even with jitter {JITTER}: its kernel is not a "
            "valid (positive semi-definite, unit-variance) covariance function."
        )
    z = torch.randn(cov.shape[0], M, n, generator=gen, dtype=cov.dtype)
    return L @ z


@dataclass
class MultiRegionScenario:
    """A synthetic multi-region experiment with known latents, delays and loadings; :meth:`sample` draws it.

    Observations (module docstring for the latents): Gaussian, ``y_t = C x_t + e`` with ``e ~ N(0, I/snr)``, or
    Poisson spike counts. For counts, neuron ``n``'s latent drive ``u_tn = (C x_t)_n`` has prior variance
    ``s_n² = Σ_k C_nk²`` (unit-variance latents), and

    ``log λ_tn = log b_n − g²/2 + g · u_tn / s_n``,  ``y_tn ~ Poisson(λ_tn)``,

    so that ``E[λ_tn] = b_n`` and ``sd(log λ_tn) = g`` for every neuron, whatever its loadings. A neuron of a region
    without latents has ``s_n = 0`` and the constant rate ``b_n``. Latents and orthonormal loadings are drawn
    first and identically for both observation models, so a seed gives the same latents and loading directions.

    Parameters
    ----------
    n_trials, T : trials and time bins per trial (``n_trials ≥ 1``, ``T ≥ 2``).
    y_dims : neurons per region (region 0 is the delay reference); ``n_r ≥ n_across + n_within_r``.
    n_across : latents shared by all regions.
    n_within : private latents per region (an int for every region, or one count per region).
    kernels : optional kernels, ``n_across`` across kernels then the within kernels region by region
        (``n_across + Σ_r n_within_r`` in all); overrides the timescales. Default: RBF kernels.
    timescales_across : RBF timescales (bins) of the across latents, one per latent.
    timescales_within : RBF timescale (bins) of every within latent, or one per region.
    delay_shape : one of :data:`~mbrila.synthetic.delay_shapes.DELAY_SHAPES`.
    delay_amplitude : delay amplitude (bins) per across latent, scaled per region by 1.0 → 0.5.
    delay_kwargs : shape options for :func:`~mbrila.synthetic.delay_shapes.make_delays` (centres, widths, signs…).
    snr : signal-to-noise ratio; the noise variance of every neuron is ``1/snr`` (each latent and each loading
        column has unit scale, so ``snr`` is the per-latent-direction ratio). Gaussian observations only.
    observation : ``"gaussian"`` (``y = C x + d + e``) or ``"poisson"`` (spike counts, see above).
    base_rate : mean spikes per bin ``b_n`` of every neuron, or a pair ``(lo, hi)`` from which each neuron's base
        rate is drawn log-uniformly (heterogeneous rates, as in recordings). Poisson observations only.
    gain : ``g``, the standard deviation of every neuron's log rate driven by the latents (``0`` gives constant
        rates). Poisson observations only.
    seed : seeds latents, loadings and noise (or base rates and counts); the same seed gives identical samples.

    Raises
    ------
    ValueError
        On construction, naming the first inconsistent field (see :meth:`validate`).
    """

    n_trials: int = 50
    T: int = 200
    y_dims: tuple[int, ...] = (100,) * 5
    n_across: int = 2
    n_within: int | tuple[int, ...] = 1
    kernels: Sequence[BaseKernel] | None = None
    timescales_across: tuple[float, ...] = (4.47, 1.41)
    timescales_within: float | tuple[float, ...] = 4.47
    delay_shape: str = "constant"
    delay_amplitude: tuple[float, ...] = (3.0, 1.0)
    delay_kwargs: dict[str, Any] = field(default_factory=dict)
    snr: float = 20.0
    observation: str = "gaussian"
    base_rate: float | tuple[float, float] = 0.2
    gain: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------------------------- structure
    @property
    def n_regions(self) -> int:
        return len(self.y_dims)

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(f"R{r}" for r in range(self.n_regions))

    @property
    def n_within_per_region(self) -> tuple[int, ...]:
        if isinstance(self.n_within, int):
            return (int(self.n_within),) * self.n_regions
        return tuple(int(n) for n in self.n_within)

    @property
    def latent_spec(self) -> LatentSpec:
        """The true latent counts, as a :class:`~mbrila.core.LatentSpec`."""
        return LatentSpec(int(self.n_across), self.n_within_per_region)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        if isinstance(self.n_trials, bool) or int(self.n_trials) != self.n_trials or self.n_trials < 1:
            raise ValueError(f"n_trials must be an int ≥ 1; got {self.n_trials!r}.")
        if isinstance(self.T, bool) or int(self.T) != self.T or self.T < 2:
            raise ValueError(f"T must be an int ≥ 2; got {self.T!r}.")
        if not (float(self.snr) > 0 and float(self.snr) < float("inf")):
            raise ValueError(f"snr must be positive and finite; got {self.snr!r}.")
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATIONS)}; got {self.observation!r}.")
        self._base_rate_range()  # raises on a bad base_rate even for Gaussian data: a config error shows at once
        if not (float(self.gain) >= 0 and float(self.gain) < float("inf")):
            raise ValueError(f"gain must be ≥ 0 and finite (sd of the log rate); got {self.gain!r}.")
        dims = tuple(self.y_dims)
        if not dims or any(int(n) != n or n < 1 for n in dims):
            raise ValueError(f"y_dims must list a positive neuron count per region; got {self.y_dims!r}.")
        R = len(dims)
        if int(self.n_across) != self.n_across or self.n_across < 0:
            raise ValueError(f"n_across must be an int ≥ 0; got {self.n_across!r}.")
        if not isinstance(self.n_within, int):
            within = tuple(self.n_within)
            if len(within) != R:
                raise ValueError(f"n_within has {len(within)} counts but y_dims has {R} regions.")
        else:
            within = (self.n_within,) * R
        if any(int(w) != w or w < 0 for w in within):
            raise ValueError(f"n_within must be ints ≥ 0; got {self.n_within!r}.")
        if self.n_across + sum(within) == 0:
            raise ValueError("the scenario needs at least one latent: n_across and n_within are all 0.")
        for r, (n, w) in enumerate(zip(dims, within, strict=True)):
            if n < self.n_across + w:
                raise ValueError(
                    f"region {r} has {n} neurons but {self.n_across + w} latents; orthonormal loadings need "
                    "n_r ≥ n_across + n_within_r."
                )
        if len(self.delay_amplitude) != self.n_across:
            raise ValueError(f"delay_amplitude has {len(self.delay_amplitude)} values but n_across is {self.n_across}.")
        if self.delay_shape not in DELAY_SHAPES:
            raise ValueError(f"unknown delay_shape {self.delay_shape!r}; valid shapes are {', '.join(DELAY_SHAPES)}.")
        if self.kernels is not None:
            need = self.n_across + sum(within)
            if len(self.kernels) != need:
                raise ValueError(
                    f"kernels must list {need} kernels (n_across across kernels, then the within kernels region "
                    f"by region); got {len(self.kernels)}."
                )
            for i, k in enumerate(self.kernels):
                if not isinstance(k, BaseKernel):
                    raise ValueError(f"kernels[{i}] must be a BaseKernel; got {type(k).__name__}.")
            return
        if len(self.timescales_across) != self.n_across:
            raise ValueError(
                f"timescales_across has {len(self.timescales_across)} values but n_across is {self.n_across}."
            )
        ts_w = self.timescales_within
        ts_list = [float(ts_w)] if isinstance(ts_w, (int, float)) else [float(v) for v in ts_w]
        if not isinstance(ts_w, (int, float)) and len(ts_list) != R:
            raise ValueError(f"timescales_within has {len(ts_list)} values but y_dims has {R} regions.")
        for name, vals in (
            ("timescales_across", [float(v) for v in self.timescales_across]),
            ("timescales_within", ts_list),
        ):
            if any(not (v > 0 and v < float("inf")) for v in vals):
                raise ValueError(f"{name} must be positive and finite (bins); got {vals}.")

    def _base_rate_range(self) -> tuple[float, float]:
        """``(lo, hi)`` of ``base_rate`` (``lo == hi`` for one rate); raise ``ValueError`` if it is not valid."""
        br = self.base_rate
        expected = "a positive finite rate (spikes per bin) or a pair (lo, hi) with 0 < lo ≤ hi < inf"
        vals: list[object] = list(br) if isinstance(br, (tuple, list)) else [br]
        rates = [float(v) for v in vals if isinstance(v, numbers.Real) and not isinstance(v, bool)]
        if len(rates) != len(vals) or len(rates) != (2 if isinstance(br, (tuple, list)) else 1):
            raise ValueError(f"base_rate must be {expected}; got {br!r}.")
        lo, hi = rates[0], rates[-1]
        if not (lo > 0 and lo <= hi and hi < float("inf")):
            raise ValueError(f"base_rate must be {expected}; got {br!r}.")
        return lo, hi

    def make_kernels(self) -> tuple[list[BaseKernel], list[list[BaseKernel]]]:
        """``(across kernels, within kernels per region)``: ``kernels`` split, or RBF kernels from the timescales."""
        within = self.n_within_per_region
        if self.kernels is not None:
            ks = list(self.kernels)
            across, rest = ks[: self.n_across], ks[self.n_across :]
            per_region, start = [], 0
            for n in within:
                per_region.append(rest[start : start + n])
                start += n
            return across, per_region
        across = [RBFKernel(float(ts)) for ts in self.timescales_across]
        ts_w = self.timescales_within
        per_region = []
        for r, n in enumerate(within):
            ts = float(ts_w) if isinstance(ts_w, (int, float)) else float(ts_w[r])
            per_region.append([RBFKernel(ts) for _ in range(n)])
        return across, per_region

    def delays(self) -> Tensor:
        """The true delays ``(T, n_regions, n_across)`` in bins, float64 (column 0 is zero)."""
        self.validate()
        d = make_delays(self.delay_shape, int(self.T), self.n_regions, self.delay_amplitude, **self.delay_kwargs)
        return torch.from_numpy(d)

    # ------------------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(
        self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
    ) -> tuple[MultiRegionData, ScenarioTruth]:
        """Draw the data and its ground truth.

        Parameters
        ----------
        dtype, device : of the returned data and truth tensors (sampling itself is float64 on the CPU, so the
            draw does not depend on them).

        Returns
        -------
        data : :class:`~mbrila.core.MultiRegionData` with ``y (n_trials, T, N)`` and regions ``"R0"…``.
        truth : :class:`ScenarioTruth`.
        """
        self.validate()
        f64 = torch.float64
        B, T, R, K = int(self.n_trials), int(self.T), self.n_regions, int(self.n_across)
        within = self.n_within_per_region
        gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
        kern_across, kern_within = self.make_kernels()
        delays = self.delays()  # (T, R, K)
        t = torch.arange(T, dtype=f64)

        # Across latents: region r sees latent k at s = t − δ_k^r(t). Stack (region, time) region-major into
        # M = R·T points per latent and sample the exact joint Gaussian for all latents and trials at once.
        if K > 0:
            s = (t[:, None, None] - delays).permute(2, 1, 0).reshape(K, R * T)  # (K, M)
            cov = _eval_kernels(kern_across, s[:, :, None] - s[:, None, :])  # (K, M, M)
            draws = _sample_gaussians(cov, B, gen, "across latent")  # (K, M, B)
            across = draws.reshape(K, R, T, B).permute(3, 2, 1, 0).contiguous()  # (B, T, R, K)
        else:
            across = torch.zeros(B, T, R, 0, dtype=f64)

        # Within latents: independent stationary GPs on the plain time grid, all of them in one batch.
        flat_within = [k for ks in kern_within for k in ks]
        if flat_within:
            cov_w = _eval_kernels(flat_within, t[:, None] - t[None, :])  # (J, T, T)
            draws_w = _sample_gaussians(cov_w, B, gen, "within latent").permute(2, 1, 0)  # (B, T, J)
        else:
            draws_w = torch.zeros(B, T, 0, dtype=f64)
        latents_within = list(torch.split(draws_w, list(within), dim=-1))

        # Loadings: orthonormal columns per region from the reduced QR of a Gaussian matrix.
        C = []
        for n_r, w_r in zip(self.y_dims, within, strict=True):
            q, _ = torch.linalg.qr(torch.randn(int(n_r), K + w_r, generator=gen, dtype=f64))
            C.append(q)
        x_regions = [torch.cat([across[:, :, r, :], latents_within[r]], dim=-1) for r in range(R)]  # (B, T, ·)
        if self.observation == "poisson":
            y, clean, C_obs, d, R_obs, floor = self._sample_counts(x_regions, C, gen)
        else:
            # Gaussian draws stay in this order (latents, loadings, noise): samples of a seed must not change.
            clean = torch.cat([x_regions[r] @ C[r].T for r in range(R)], dim=-1)  # (B, T, N)
            N = clean.shape[-1]
            noise_var = 1.0 / float(self.snr)
            y = clean + noise_var**0.5 * torch.randn(B, T, N, generator=gen, dtype=f64)
            C_obs, d, R_obs = C, torch.zeros(N, dtype=f64), torch.full((N,), noise_var, dtype=f64)
            floor = noise_var**0.5

        truth = ScenarioTruth(
            delays=delays,
            latents_across=across,
            latents_within=[x.contiguous() for x in latents_within],
            C=C_obs,
            d=d,
            R=R_obs,
            timescales_across=torch.tensor([_timescale_of(k) for k in kern_across], dtype=f64),
            timescales_within=[torch.tensor([_timescale_of(k) for k in ks], dtype=f64) for ks in kern_within],
            noise_floor_rmse=floor,
            clean=clean,
        ).to(dtype=dtype, device=device)
        data = MultiRegionData(y, tuple(int(n) for n in self.y_dims), self.region_names, dtype=dtype, device=device)
        return data, truth

    def _sample_counts(
        self, x_regions: list[Tensor], C: list[Tensor], gen: torch.Generator
    ) -> tuple[Tensor, Tensor, list[Tensor], Tensor, Tensor, float]:
        """Poisson counts given the latents ``x_regions[r] (B, T, ·)`` and orthonormal loadings ``C[r]``.

        Returns ``(y, λ, log-rate loadings g·C_n/s_n, d = log b − g²/2, R = NaN, sqrt(mean λ))``, all float64.
        Draws base rates (for a ``(lo, hi)`` pair), then counts, from ``gen`` after the latents and loadings.
        """
        f64 = torch.float64
        g = float(self.gain)
        lo, hi = self._base_rate_range()
        N = sum(c.shape[0] for c in C)
        if isinstance(self.base_rate, (tuple, list)):
            u = torch.rand(N, generator=gen, dtype=f64)
            log_b = math.log(lo) + (math.log(hi) - math.log(lo)) * u  # log-uniform on [lo, hi]
        else:
            log_b = torch.full((N,), math.log(lo), dtype=f64)

        C_log, gains = [], []
        for c in C:
            s = c.square().sum(dim=1).sqrt()  # (n_r,) prior sd of the drive (C x)_n of unit-variance latents
            # A region without latents has s = 0 and no drive: a constant rate b_n (gain 0), not 0/0.
            g_n = torch.where(s > 0, torch.full_like(s, g), torch.zeros_like(s))
            C_log.append(c * (g_n / torch.where(s > 0, s, torch.ones_like(s)))[:, None])
            gains.append(g_n)
        # −g²/2 compensates the lognormal mean E[exp(g z)] = exp(g²/2), so that E[λ_n] = b_n.
        d = log_b - torch.cat(gains).square() / 2
        log_rate = torch.cat([x @ c.T for x, c in zip(x_regions, C_log, strict=True)], dim=-1) + d  # (B, T, N)
        rate = torch.exp(log_rate)
        y = torch.poisson(rate, generator=gen)
        return y, rate, C_log, d, torch.full((N,), float("nan"), dtype=f64), float(rate.mean().sqrt())


#: Field values of the scenarios behind the published numbers (DESIGN.md §5), on top of the defaults
#: (50 trials, T = 200, 100 neurons per region, 2 across latents with RBF timescales 4.47 and 1.41 bins, delay
#: amplitudes 3 and 1 bins, 1 within latent per region with timescale 4.47, SNR 20).
HEADLINE_SCENARIOS: dict[str, dict[str, Any]] = {
    "dlag": {"y_dims": (100,) * 5, "delay_shape": "constant"},
    "dlag_exact": {"y_dims": (100,) * 2, "delay_shape": "constant"},
    "mdlag": {"y_dims": (100,) * 3, "n_within": 0, "n_across": 2, "delay_shape": "constant"},
    "adm": {"y_dims": (100,) * 5, "delay_shape": "gaussian"},
}


def headline_scenario(kind: str, seed: int = 0, **overrides: Any) -> MultiRegionScenario:
    """The synthetic scenario behind a published number (DESIGN.md §5); call ``.sample()`` on it.

    Parameters
    ----------
    kind : ``"dlag"`` (5 regions, constant delays), ``"dlag_exact"`` (2 regions, constant delays), ``"mdlag"``
        (3 regions, 2 across latents, no within latents, constant delays) or ``"adm"`` (5 regions, Gaussian-bump
        delays centred at 0.2T and 0.8T, widths 0.04T and 0.12T, shifted per region within ±0.075T).
    seed : the scenario seed.
    **overrides : any other :class:`MultiRegionScenario` field (e.g. ``n_trials=10`` for a quick run).
    """
    if kind not in HEADLINE_SCENARIOS:
        raise ValueError(f"unknown headline scenario {kind!r}; valid kinds are {', '.join(HEADLINE_SCENARIOS)}.")
    names = {f.name for f in dataclasses.fields(MultiRegionScenario)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown MultiRegionScenario fields {unknown}; valid fields are {sorted(names)}.")
    return MultiRegionScenario(**{**HEADLINE_SCENARIOS[kind], "seed": seed, **overrides})
