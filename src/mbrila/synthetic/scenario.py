"""Synthetic multi-region data with ground truth, sampled from the exact (dense) delayed GP.

For across latent ``k`` and regions ``r, s``: ``Cov(x_k^r(t), x_k^s(u)) = k_k((t − δ_k^r(t)) − (u − δ_k^s(u)))``;
within latents are independent GPs per region; ``y^r = C^r x^r + d^r + e`` with orthonormal loading columns per
region, ``d = 0`` and noise variance ``1/snr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.kernels import BaseKernel, RBFKernel
from mbrila.synthetic.delay_shapes import make_delays

_JITTER = 1e-6


@dataclass
class ScenarioTruth:
    """Ground truth of a sampled scenario (all float64 CPU tensors)."""

    delays: Tensor  # (T, n_regions, n_across), column 0 zero
    latents_across: Tensor  # (trials, T, n_regions, n_across): each region's delayed view
    latents_within: list[Tensor]  # per region (trials, T, n_within_r)
    C: list[Tensor]  # per region (n_r, n_across + n_within_r)
    d: Tensor  # (N,)
    R: Tensor  # (N,)
    timescales_across: Tensor
    timescales_within: list[Tensor]
    clean: Tensor  # (trials, T, N) noise-free data
    noise_floor_rmse: float

    def region_latents(self, r: int) -> Tensor:
        """``(trials, T, n_across + n_within_r)``: what region ``r``'s neurons load on."""
        return torch.cat([self.latents_across[:, :, r, :], self.latents_within[r]], -1)


def _timescale(kernel: BaseKernel) -> float:
    ts = getattr(kernel, "timescale", None)
    return float(ts.detach()) if isinstance(ts, Tensor) else float("nan")


def _sample_gp(cov: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """``n`` draws from ``N(0, cov)``: ``(n, M)``."""
    L = torch.linalg.cholesky(cov + _JITTER * torch.eye(cov.shape[0], dtype=cov.dtype))
    return (L @ torch.randn(cov.shape[0], n, generator=gen, dtype=cov.dtype)).T


@dataclass
class MultiRegionScenario:
    """A synthetic multi-region experiment; :meth:`sample` returns ``(data, truth)``.

    Parameters
    ----------
    n_trials, T : sizes. y_dims : neurons per region.
    n_across, n_within : latent counts (``n_within`` int or per region).
    kernels : optional kernels, across latents first then within latents region by region; default RBF with
        ``timescales_across`` / ``timescales_within`` (bins).
    delay_shape, delay_amplitude, delay_kwargs : see :func:`mbrila.synthetic.delay_shapes.make_delays`.
    snr : signal-to-noise ratio; the noise variance is ``1/snr``.
    seed : seeds everything (loadings, latents, noise).
    """

    n_trials: int = 50
    T: int = 200
    y_dims: Sequence[int] = (100, 100, 100, 100, 100)
    n_across: int = 2
    n_within: int | Sequence[int] = 1
    kernels: Sequence[BaseKernel] | None = None
    timescales_across: Sequence[float] = (4.47, 1.41)
    timescales_within: float | Sequence[float] = 4.47
    delay_shape: str = "constant"
    delay_amplitude: Sequence[float] = (3.0, 1.0)
    delay_kwargs: dict[str, Any] = field(default_factory=dict)
    snr: float = 20.0
    seed: int = 0

    def _check(self) -> tuple[int, ...]:
        if self.n_trials < 1 or self.T < 2:
            raise ValueError(f"need n_trials ≥ 1 and T ≥ 2; got {self.n_trials}, {self.T}.")
        if not self.snr > 0:
            raise ValueError(f"snr must be positive; got {self.snr}.")
        R = len(self.y_dims)
        spec = LatentSpec(self.n_across, tuple(self.n_within) if not isinstance(self.n_within, int) else self.n_within)
        within = spec.for_regions(R).n_within
        assert isinstance(within, tuple)
        if self.kernels is None and len(self.timescales_across) != self.n_across:
            raise ValueError(f"timescales_across has {len(self.timescales_across)} values for {self.n_across} latents.")
        if len(self.delay_amplitude) != self.n_across:
            raise ValueError(f"delay_amplitude has {len(self.delay_amplitude)} values for {self.n_across} latents.")
        return within

    def _kernels(self, within: tuple[int, ...]) -> tuple[list[BaseKernel], list[list[BaseKernel]]]:
        if self.kernels is not None:
            ks = list(self.kernels)
            need = self.n_across + sum(within)
            if len(ks) != need:
                raise ValueError(f"kernels must list {need} kernels (across, then within by region); got {len(ks)}.")
            acr, rest = ks[: self.n_across], ks[self.n_across :]
            wit, o = [], 0
            for n in within:
                wit.append(rest[o : o + n])
                o += n
            return acr, wit
        ts_w = self.timescales_within
        acr = [RBFKernel(float(ts)) for ts in self.timescales_across]
        wit = []
        for r, n in enumerate(within):
            ts = ts_w if isinstance(ts_w, (int, float)) else ts_w[r]
            wit.append([RBFKernel(float(ts)) for _ in range(n)])
        return acr, wit

    @torch.no_grad()
    def sample(
        self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
    ) -> tuple[MultiRegionData, ScenarioTruth]:
        within = self._check()
        R, T, B = len(self.y_dims), self.T, self.n_trials
        gen = torch.Generator().manual_seed(self.seed)
        acr_k, wit_k = self._kernels(within)
        delays = torch.as_tensor(
            make_delays(self.delay_shape, T, R, self.delay_amplitude, **self.delay_kwargs),
            dtype=torch.float64,
        )
        t = torch.arange(T, dtype=torch.float64)
        across = torch.zeros(B, T, R, self.n_across, dtype=torch.float64)
        for k, kern in enumerate(acr_k):  # one dense (R·T)² covariance per latent
            times = (t[:, None] - delays[:, :, k]).reshape(-1)  # time-major (t, r)
            cov = kern.double().cov(times[:, None] - times[None, :])
            across[..., k] = _sample_gp(cov, B, gen).reshape(B, T, R)
        within_lat = []
        for r in range(R):
            cols = []
            for kern in wit_k[r]:
                cov = kern.double().cov(t[:, None] - t[None, :])
                cols.append(_sample_gp(cov, B, gen))
            within_lat.append(torch.stack(cols, -1) if cols else torch.zeros(B, T, 0, dtype=torch.float64))
        C, clean = [], []
        for r, n in enumerate(self.y_dims):
            D_r = self.n_across + within[r]
            q, _ = torch.linalg.qr(torch.randn(n, D_r, generator=gen, dtype=torch.float64))
            C.append(q)
            x_r = torch.cat([across[:, :, r, :], within_lat[r]], -1)
            clean.append(x_r @ q.T)
        clean_y = torch.cat(clean, -1)
        N = clean_y.shape[-1]
        noise_var = 1.0 / self.snr
        y = clean_y + noise_var**0.5 * torch.randn(clean_y.shape, generator=gen, dtype=torch.float64)
        names = [f"R{r}" for r in range(R)]
        data = MultiRegionData(y, tuple(self.y_dims), names, dtype=dtype, device=device)
        truth = ScenarioTruth(
            delays=delays,
            latents_across=across,
            latents_within=within_lat,
            C=C,
            d=torch.zeros(N, dtype=torch.float64),
            R=torch.full((N,), noise_var, dtype=torch.float64),
            timescales_across=torch.tensor([_timescale(k) for k in acr_k]) if acr_k else torch.zeros(0),
            timescales_within=[torch.tensor([_timescale(k) for k in ks]) for ks in wit_k],
            clean=clean_y,
            noise_floor_rmse=noise_var**0.5,
        )
        return data, truth


def headline_scenario(kind: str = "dlag", seed: int = 0, **overrides: Any) -> MultiRegionScenario:
    """The scenarios behind the published numbers (50 trials, T = 200, 100 neurons per region).

    ``kind``: ``"dlag"`` (5 regions, constant delays), ``"dlag_exact"`` (2 regions, constant), ``"mdlag"``
    (3 regions, 2 across latents, no within), ``"adm"`` (5 regions, Gaussian-bump delays).
    """
    presets: dict[str, dict[str, Any]] = {
        "dlag": {},
        "dlag_exact": {"y_dims": (100, 100)},
        "mdlag": {"y_dims": (100, 100, 100), "n_within": 0},
        "adm": {"delay_shape": "gaussian"},
    }
    if kind not in presets:
        raise ValueError(f"kind must be one of {sorted(presets)}; got {kind!r}.")
    kw = {**presets[kind], **overrides}
    return MultiRegionScenario(seed=seed, **kw)
