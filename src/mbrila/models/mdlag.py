"""mDLAG: delayed latents across many regions, with ARD deciding where each latent lives (Gokcen et al. 2023).

Model: ``K`` candidate latents, each one GP ``z_k`` (kernel ``k_k``, unit variance, nugget ``ε``) seen by region
``r`` at ``t − δ_k^r`` (region 0 the reference, ``δ^0 = 0``; ``δ > 0``: region r lags), read out by every region
through the ARD observation of :mod:`mbrila.observations.ard`::

    y^r_t = C^r x^r_t + d^r + e,   x^r_t = [z_1(t − δ_1^r), …, z_K(t − δ_K^r)],   c^r_{·k} ~ N(0, (α^r_k)⁻¹ I)

A latent whose ARD precision ``α^r_k`` grows without bound is switched off in region ``r``: a latent active in
every region is an across latent, one active in a single region a within latent, one active nowhere is pruned.

**Activity rule** (mDLAG's, with its defaults): latent ``k`` is active in region ``r`` when it explains more than
``active_threshold`` (2 %) of the region's shared variance, ``(1/⟨α^r_k⟩) / Σ_j (1/⟨α^r_j⟩)``, and the region's
signal-to-noise ratio ``tr⟨C^rᵀC^r⟩ / Σ_n ⟨φ_n⟩⁻¹`` exceeds ``snr_threshold`` (0.001).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.delays import FixedDelay
from mbrila.inference.vem_ard import VEMARDEngine, VEMKalmanARDEngine
from mbrila.inference.vem_ard_freq import VEMARDFreqEngine
from mbrila.init.multi_region import apply_delays_and_timescales, estimate_multi_region
from mbrila.models.base import MultiRegionLatentModel
from mbrila.models.presets import (
    DEFAULT_EPS,
    DEFAULT_ORDER,
    KernelFactory,
    check_structure,
    default_kernel,
    default_max_delay,
    gp_blocks,
    resolve_engine,
)
from mbrila.observations.ard import ARDObservation

#: Engine names of MDLAG; each builds exactly the engine it names.
ARD_ENGINES: dict[str, type] = {"time": VEMARDEngine, "freq": VEMARDFreqEngine, "kalman": VEMKalmanARDEngine}
#: Share of a region's shared variance a latent must explain to count as active there (mDLAG's default).
ACTIVE_THRESHOLD = 0.02
#: Signal-to-noise ratio a region needs for any latent to count as active in it (mDLAG's default).
SNR_THRESHOLD = 1e-3


class MDLAG(MultiRegionLatentModel):
    """Multi-region DLAG with automatic relevance determination (see the module docstring).

    Parameters
    ----------
    latent_spec : ``LatentSpec(n_across=K)``: ``K ≥ 1`` candidate latents (start with more than you expect; ARD
        switches the others off); ``n_within`` must be 0 — ARD finds within-region latents itself.
    y_dims : neurons per region.
    T : trial length (bins) the model is built for, at least 2; ``fit``, ``infer`` and ``predict`` take trials of
        at most ``T`` bins (ragged trials: their padded length).
    engine : ``"time"`` (default: dense GP posterior, :class:`~mbrila.inference.VEMARDEngine`), ``"freq"``
        (fast-mDLAG: circulant approximation in the frequency domain, :class:`~mbrila.inference.VEMARDFreqEngine`;
        needs kernels with ``spectral_density``), ``"kalman"`` (Kalman smoother on the lifted GP,
        :class:`~mbrila.inference.VEMKalmanARDEngine`) or an engine instance.
    kernel_factory : zero-argument callable returning a fresh kernel per latent (default RBF).
    max_delay : bound on ``|δ|`` in bins (default ``T / 4``).
    order : AR order of the state-space lift (``engine="kalman"`` only).
    eps : GP nugget (fixed).
    prior : hyper-parameters of :class:`~mbrila.observations.ARDObservation` (``a_alpha``, ``b_alpha``,
        ``a_phi``, ``b_phi``, ``beta``, ``min_var_frac``).
    active_threshold, snr_threshold : the activity rule of the module docstring.
    dtype, device : of the parameters.
    engine_defaults : keyword arguments for the engine built from a name (e.g. ``{"tol": 1e-7}``).
    observation : ``"gaussian"`` only (the ARD read-out); other values are refused, pointing spike counts to the
        state-space presets' ``observation="poisson"``.
    """

    alternative_forms = frozenset({"state_space", "dense_gp"})
    #: ARD switches off the latents a region cannot support: more candidates than neurons is expected.
    warns_latents_over_neurons = False
    observation: ARDObservation

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        engine: Any = None,
        kernel_factory: KernelFactory = default_kernel,
        max_delay: float | None = None,
        order: int = DEFAULT_ORDER,
        eps: float = DEFAULT_EPS,
        prior: dict[str, float] | None = None,
        active_threshold: float = ACTIVE_THRESHOLD,
        snr_threshold: float = SNR_THRESHOLD,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        engine_defaults: dict[str, Any] | None = None,
        observation: str = "gaussian",
    ) -> None:
        """Build an mDLAG model; the parameters are described in the class docstring."""
        if observation != "gaussian":
            raise ValueError(
                f"MDLAG has only its Gaussian (variational ARD) read-out; got observation={observation!r}. For spike "
                "counts use a state-space preset with observation='poisson' (gpfa, dlag with engine='kalman', adm, lds)."
            )
        y_dims, T = check_structure(latent_spec, y_dims, T, "MDLAG", "the GP timescales and delays")
        if latent_spec.n_across < 1:
            raise ValueError(
                f"latent_spec.n_across must be at least 1 for MDLAG (the number of candidate latents); got "
                f"{latent_spec.n_across}. Start with more latents than you expect: ARD switches the others off."
            )
        within = latent_spec.n_within if isinstance(latent_spec.n_within, tuple) else (latent_spec.n_within,)
        if any(w != 0 for w in within):
            raise ValueError(
                f"latent_spec.n_within must be 0 for MDLAG; got {latent_spec.n_within!r}. ARD decides which regions "
                "each latent lives in, so a latent active in one region is a within latent: add it to n_across."
            )
        if not 0 <= active_threshold < 1:
            raise ValueError(f"active_threshold must lie in [0, 1); got {active_threshold}.")
        y_dims = tuple(int(n) for n in y_dims)
        R = len(y_dims)
        spec = latent_spec.for_regions(R)
        K = spec.n_across
        eng = resolve_engine(engine, ARD_ENGINES, "time", **(engine_defaults or {}))
        form = getattr(eng, "latent_form", "dense")
        acr, wit = gp_blocks(spec, R, kernel_factory, kernel_factory, form, order, eps)
        bound = max_delay if max_delay is not None else default_max_delay(T)
        obs = ARDObservation(y_dims, K, **(prior or {}))
        super().__init__(spec, y_dims, T, acr, wit, FixedDelay(R, K, max_delay=bound), eng, observation=obs)
        self.active_threshold = float(active_threshold)
        self.snr_threshold = float(snr_threshold)
        self.settings: dict[str, Any] = {
            "max_delay": float(bound),
            "order": int(order),
            "eps": float(eps),
            "prior": dict(prior or {}),
            "active_threshold": self.active_threshold,
            "snr_threshold": self.snr_threshold,
        }
        self.to(dtype=dtype, device=device)

    @classmethod
    def _rebuild_arguments(cls, kw: dict[str, Any], across: KernelFactory, within: KernelFactory) -> dict[str, Any]:
        """Constructor arguments from the saved settings and the saved kernels (one factory for all latents)."""
        return {**kw, "kernel_factory": across}

    def initialize(self, data: MultiRegionData) -> dict[str, float] | None:
        """The multi-region initialisation (CCA views, delays from cross-correlations, timescales, regression
        loadings) for all ``K`` candidates; the read-out starts from those point estimates."""
        y, mask = self._data(data)
        obs = self.observation
        obs.set_floor(y, mask)
        est = estimate_multi_region(self, data)
        apply_delays_and_timescales(self, est)
        obs.initialize_from(est.C, est.d, torch.maximum(est.R, obs.var_floor), est.counts)
        return None

    def inactive_blocks(self) -> list[int]:
        """The latents ARD has pruned (zero loadings everywhere); engines leave them out of ``q(X)``."""
        return torch.nonzero(self.observation.pruned).flatten().tolist()

    # ---------------------------------------------------------------- ARD read-outs
    @torch.no_grad()
    def ard_precisions(self) -> Tensor:
        """``(n_regions, K)`` posterior mean ARD precisions ``⟨α^r_k⟩`` (large: latent k is off in region r)."""
        return self.observation.alpha_mean().detach().clone()

    @torch.no_grad()
    def shared_variance_fraction(self) -> Tensor:
        """``(n_regions, K)``: ``(1/⟨α^r_k⟩) / Σ_j (1/⟨α^r_j⟩)``, each latent's share of a region's shared variance."""
        inv = 1.0 / self.observation.alpha_mean()
        return (inv / inv.sum(1, keepdim=True)).detach().clone()

    @torch.no_grad()
    def signal_to_noise(self) -> Tensor:
        """``(n_regions,)``: ``tr⟨C^rᵀ C^r⟩ / Σ_{n∈r} ⟨φ_n⟩⁻¹`` per region."""
        obs = self.observation
        cc = obs.c_second().diagonal(dim1=-2, dim2=-1).sum(-1)
        noise = obs.noise_variance()
        return torch.stack([cc[n].sum() / noise[n].sum() for n, _ in obs.region_blocks()])

    @torch.no_grad()
    def active_latents(self) -> Tensor:
        """Bool ``(n_regions, K)``: latent ``k`` is active in region ``r`` (the rule of the module docstring).

        A latent active in no region is pruned: its delays are NaN in :meth:`delays`.
        """
        frac = self.shared_variance_fraction()
        return (frac > self.active_threshold) & (self.signal_to_noise() > self.snr_threshold)[:, None]

    @torch.no_grad()
    def delays(self) -> Tensor:
        """``(T, n_regions, K)`` delays in bins (``δ > 0``: region r lags region 0); NaN where latent ``k`` is not
        active in region ``r`` (all NaN for a pruned latent). Delays of a latent that is off in region 0 are still
        relative to region 0's (fixed) time axis."""
        d = super().delays()
        off = ~self.active_latents().to(d.device)
        return d.masked_fill(off[None], float("nan"))
