"""Named presets: small compositions of blocks, a delay and an engine.

=========  ==========================================  ===============  ================
preset     latent prior                                delay            engine
=========  ==========================================  ===============  ================
GPFA       GP latents (AR(P) lift / exact SDE)         none             KalmanEMEngine
DLAG       GP latents, lifted (``engine="kalman"``)     constant         KalmanEMEngine
ADM        GP latents, time-varying lift               smooth δ(t)      KalmanEMEngine
LDS        free linear dynamical system                none             KalmanEMEngine
=========  ==========================================  ===============  ================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.delays import Delay, FixedDelay, NoDelay, TimeVaryingDelay
from mbrila.dynamics import FreeLDSLatent, MarkovianGPLatent
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.init import Deflation, deflate_across, initialize_multi_region
from mbrila.kernels import BaseKernel, RBFKernel
from mbrila.models.state_space import LatentStateSpaceModel

KernelFactory = Callable[[], BaseKernel]

#: Default AR order of the Markovian lift.
DEFAULT_ORDER = 4
#: Default GP nugget ε (DLAG's convention).
DEFAULT_EPS = 1e-3
#: Default weight λ of ADM's second-difference prior on δ(t) (per bin²). Chosen on the synthetic headline scenario
#: (λ = 1, 1e2, 1e3, 1e4 gave delay RMSE 0.071, 0.068, 0.058, 0.065 bins on seed 0): strong enough to remove
#: wiggles the data do not support, weak enough to keep an 8-bin-wide bump.
DEFAULT_SMOOTHNESS = 1e3
#: Default EM tolerance of ADM (relative change of the MAP objective; the engine's generic default is 1e-7). On the
#: headline scenario the delays settle by about iteration 150 (delay RMSE at iterations 150 / 300: seed 0 0.0569 /
#: 0.0581, seed 1 0.0481 / 0.0485, sine 0.0541 / 0.0545 bins) while the objective keeps creeping (relative gains
#: of 5e-7 falling to 1e-7 per iteration) along the trade-off between the data and the smoothness prior; 1e-6
#: stops at 140–160 iterations, about half the cost.
ADM_TOL = 1e-6


def default_max_delay(T: int) -> float:
    """Bound on ``|δ|`` used when none is given: a quarter of the trial, at least one bin."""
    return max(1.0, T / 4)


def default_kernel() -> BaseKernel:
    """RBF kernel with a 5-bin starting timescale (re-estimated from the data by the initialisation)."""
    return RBFKernel(timescale=5.0)


def _engine(engine: Any, **defaults: Any) -> KalmanEMEngine:
    """``"kalman"`` (or None) → a :class:`KalmanEMEngine` with the preset's ``defaults``; an instance is kept."""
    if engine is None or engine == "kalman":
        return KalmanEMEngine(**defaults)
    if isinstance(engine, str):
        raise ValueError(
            f"engine {engine!r} is not available for this preset; use engine='kalman' (KalmanEMEngine) or pass "
            "an engine instance."
        )
    return engine


def _gp_blocks(
    spec: LatentSpec,
    n_regions: int,
    across: KernelFactory,
    within: KernelFactory,
    order: int,
    eps: float,
) -> tuple[list[MarkovianGPLatent], list[list[MarkovianGPLatent]]]:
    acr = [MarkovianGPLatent(across(), n_views=n_regions, order=order, eps=eps) for _ in range(spec.n_across)]
    wit = [
        [MarkovianGPLatent(within(), n_views=1, order=order, eps=eps) for _ in range(spec.n_within_for(r))]
        for r in range(n_regions)
    ]
    return acr, wit


class _GPPreset(LatentStateSpaceModel):
    """Shared constructor of the GP presets."""

    capabilities = frozenset({"state_space", "linear_observation", "kernel"})

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        delay: Delay,
        engine: Any = None,
        kernel_factory_across: KernelFactory = default_kernel,
        kernel_factory_within: KernelFactory = default_kernel,
        order: int = DEFAULT_ORDER,
        eps: float = DEFAULT_EPS,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        spec = latent_spec.for_regions(len(y_dims))
        acr, wit = _gp_blocks(spec, len(y_dims), kernel_factory_across, kernel_factory_within, order, eps)
        super().__init__(spec, y_dims, T, acr, wit, delay, _engine(engine))
        self.to(dtype=dtype, device=device)

    def initialize(self, data: MultiRegionData) -> dict[str, float] | None:
        """Multi-set CCA + AMUSE for the across latents, factor analysis for the within latents."""
        initialize_multi_region(self, data)
        return None


class GPFA(_GPPreset):
    """GP factor analysis in state-space form: shared (and optionally private) GP latents, no delays.

    ``n_within=0`` gives the classic GPFA-SSM baseline.
    """

    def __init__(self, latent_spec: LatentSpec, y_dims: Sequence[int], T: int, **kw: Any) -> None:
        spec = latent_spec.for_regions(len(y_dims))
        super().__init__(spec, y_dims, T, delay=NoDelay(len(y_dims), spec.n_across), **kw)


class DLAG(_GPPreset):
    """Delayed latents across groups: across latents with one constant delay per region and latent.

    Parameters
    ----------
    engine : ``"kalman"`` (DLAG-SSM: the AR(P) lift fitted by Kalman EM) or an engine instance.
    max_delay : bound on ``|δ|`` in bins (default ``T / 4``).
    Other parameters as :class:`GPFA`.
    """

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        max_delay: float | None = None,
        engine: Any = "kalman",
        **kw: Any,
    ) -> None:
        spec = latent_spec.for_regions(len(y_dims))
        bound = max_delay if max_delay is not None else default_max_delay(T)
        delay = FixedDelay(len(y_dims), spec.n_across, max_delay=bound)
        super().__init__(spec, y_dims, T, delay=delay, engine=engine, **kw)


class ADM(_GPPreset):
    """Adaptive delay model: each across latent has its own smooth delay trajectory δ_k^r(t) per region.

    The lifted state-space model is time-varying (``A_t, Q_t`` from the delayed kernel at every step). ``fit``
    initialises as DLAG does (constant delays), then runs a rank-1 deflation stage that fits one across latent at a
    time on the residual (:mod:`mbrila.init.deflation`) before the joint fit.

    Parameters
    ----------
    max_delay : bound on ``|δ(t)|`` in bins (default ``T / 4``).
    n_basis : basis functions per delay trajectory (default ``T // 4``, see
        :class:`~mbrila.delays.TimeVaryingDelay`).
    smoothness : weight ``λ`` of the second-difference prior on δ(t) (default :data:`DEFAULT_SMOOTHNESS`).
    deflation : :class:`~mbrila.init.Deflation` settings, or None to skip the stage.
    engine : ``"kalman"`` (a :class:`KalmanEMEngine` with ``tol =`` :data:`ADM_TOL`) or an engine instance.
    Other parameters as :class:`GPFA`.
    """

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        max_delay: float | None = None,
        n_basis: int | None = None,
        smoothness: float = DEFAULT_SMOOTHNESS,
        deflation: Deflation | None = Deflation(),  # noqa: B008 (a frozen-by-convention settings object)
        engine: Any = "kalman",
        **kw: Any,
    ) -> None:
        spec = latent_spec.for_regions(len(y_dims))
        bound = max_delay if max_delay is not None else default_max_delay(T)
        delay = TimeVaryingDelay(len(y_dims), spec.n_across, T, n_basis=n_basis, max_delay=bound, smoothness=smoothness)
        super().__init__(spec, y_dims, T, delay=delay, engine=_engine(engine, tol=ADM_TOL), **kw)
        self.deflation = deflation

    def initialize(self, data: MultiRegionData) -> dict[str, float] | None:
        """DLAG's initialisation (constant delays), then the deflation stage; returns the time of each stage."""
        t0 = time.perf_counter()
        initialize_multi_region(self, data)
        t1 = time.perf_counter()
        if self.deflation is None or self.latent_spec.n_across == 0:
            return {"multi_region": t1 - t0}

        ref = self.observation.C
        delay = cast(TimeVaryingDelay, self.delay)
        blk = cast(MarkovianGPLatent, self.across[0])

        def build_single(kernel: BaseKernel) -> ADM:
            # The same delay parametrisation and lift as this model, for one across latent and no within latents.
            return ADM(
                LatentSpec(1, 0),
                self.y_dims,
                self.T,
                max_delay=delay.max_delay,
                n_basis=delay.n_basis,
                smoothness=delay.smoothness,
                deflation=None,
                kernel_factory_across=lambda: kernel,
                order=blk.order,
                eps=blk.eps,
                dtype=ref.dtype,
                device=ref.device,
            )

        deflate_across(self, data, build_single, self.deflation)
        return {"multi_region": t1 - t0, "deflation": time.perf_counter() - t1}


class LDS(LatentStateSpaceModel):
    """Free linear dynamical system baseline: shared LDS latents (``n_across``) and private ones per region."""

    capabilities = frozenset({"state_space", "linear_observation"})

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        engine: Any = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        spec = latent_spec.for_regions(len(y_dims))
        n_r = len(y_dims)
        acr = [FreeLDSLatent(spec.n_across, n_groups=n_r)] if spec.n_across else []
        wit = [[FreeLDSLatent(spec.n_within_for(r))] if spec.n_within_for(r) else [] for r in range(n_r)]
        super().__init__(spec, y_dims, T, acr, wit, NoDelay(n_r, spec.n_across), _engine(engine))
        self.to(dtype=dtype, device=device)

    def initialize(self, data: MultiRegionData) -> dict[str, float] | None:
        initialize_multi_region(self, data, set_delays=False, set_timescales=False)
        return None
