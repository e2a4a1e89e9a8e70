"""Named presets: small compositions of latent blocks, a delay, an observation and an engine.

=========  ==================================================  ===============  ==================================
preset     latent prior                                        delay            engines (default first)
=========  ==================================================  ===============  ==================================
GPFA       GP latents                                          none             ``kalman``, ``exact``
DLAG       GP latents                                          constant         ``exact``, ``kalman`` (DLAG-SSM)
ADM        GP latents, time-varying lift                       smooth δ(t)      ``kalman``
LDS        free linear dynamical system                        none             ``kalman``
MDLAG      GP latents, ARD read-out (:mod:`mbrila.models.mdlag`)  constant      ``time``, ``freq``, ``kalman``
=========  ==================================================  ===============  ==================================

``kalman`` engines use state-space blocks (AR(P) lift or exact SDE); ``exact`` / ``time`` use dense covariances.
GPFA, DLAG, ADM and LDS also take spike counts: ``observation="poisson"`` swaps the linear-Gaussian read-out for a
Poisson one and ``kalman`` for Laplace EM (:class:`~mbrila.inference.LaplaceEMEngine`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import torch
from torch import nn

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.core.capabilities import ENGINES
from mbrila.delays import Delay, FixedDelay, NoDelay, TimeVaryingDelay
from mbrila.dynamics import ExactGPLatent, FreeLDSLatent, MarkovianGPLatent
from mbrila.inference.exact_em import ExactEMEngine
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.inference.laplace_em import LaplaceEMEngine
from mbrila.init import Deflation, deflate_across, initialize_multi_region
from mbrila.kernels import BaseKernel, RBFKernel
from mbrila.models.base import MultiRegionLatentModel, _check_dims
from mbrila.observations.poisson import LINKS, PoissonObservation

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
#: EM accelerator of the delayed state-space presets (DLAG-SSM, ADM): SQUAREM (:mod:`mbrila.inference.squarem`).
#: Their fits creep along the delays and timescales, which SQUAREM jumps along. Chosen on the headline demos' data
#: seeds 3 and 4 (``benchmarks/squarem.py --seeds 3 4``): DLAG-SSM and ADM fits 1.9–2.9× faster, delay RMSE within
#: 0.0014 bins of the over-relaxed fits'. GPFA (0.80×, 1.08×: 43 and 35 iterations against 33 and 36) and LDS (0.81×,
#: 1.21×) gained nothing and keep the over-relaxation of their closed-form update. Exact DLAG was 1.6× and 2.4×
#: faster, but on the V1/V2 protocol its held-out V2 PSTH RMSE rose by 0.00064 (0.0430 → 0.0436), more than the
#: 0.0005 its numbers may move, so there SQUAREM is opt-in.
ACCELERATE = "squarem"


def default_max_delay(T: int) -> float:
    """Bound on ``|δ|`` used when none is given: a quarter of the trial, at least one bin."""
    return max(1.0, T / 4)


def check_structure(latent_spec: Any, y_dims: Any, T: Any, preset: str, what: str) -> tuple[tuple[int, ...], int]:
    """Check the arguments every preset takes, before anything uses them: ``(y_dims, T)`` as ints, else a
    ``ValueError`` naming the argument. ``T = 1`` is refused: ``what`` (timescales, delays, dynamics) cannot be
    learned from single-bin trials."""
    if not isinstance(latent_spec, LatentSpec):
        raise ValueError(
            f"latent_spec must be a mbrila.LatentSpec, e.g. LatentSpec(2, 1); got {type(latent_spec).__name__}."
        )
    dims = _check_dims(y_dims, T)
    if int(T) == 1:
        raise ValueError(
            f"T must be at least 2 for {preset}: {what} cannot be learned from trials of a single time bin; got T=1. "
            "For single-bin data use static factor analysis (mbrila.init.factor_analysis), or bin the trials finer."
        )
    return dims, int(T)


def default_kernel() -> BaseKernel:
    """RBF kernel with a 5-bin starting timescale (re-estimated from the data by the initialisation)."""
    return RBFKernel(timescale=5.0)


def resolve_engine(engine: Any, names: dict[str, type], default: str, **defaults: Any) -> Any:
    """The engine a preset runs: a name (None: the preset's ``default``) → a new engine with ``defaults``.

    ``names`` maps the preset's engine names to classes; any other registered name (e.g. ``"freq"`` on a
    linear-Gaussian preset) is built too, so that the capability check can say what it lacks. An engine
    instance is kept as it is.
    """
    if engine is None:
        engine = default
    if not isinstance(engine, str):
        return engine
    key = engine.lower()
    cls = names.get(key) or ENGINES.get(key)
    if cls is None:
        raise ValueError(f"unknown engine {engine!r}; this preset's engines are {sorted(names)} (or pass an instance).")
    return cls(**defaults)


#: Engine names of the linear-Gaussian presets.
LINEAR_ENGINES: dict[str, type] = {"exact": ExactEMEngine, "kalman": KalmanEMEngine}
#: Engine names of the presets with a Poisson read-out (``"exact"`` is kept so that its refusal names the reason).
POISSON_ENGINES: dict[str, type] = {"exact": ExactEMEngine, "kalman": LaplaceEMEngine}
#: Read-outs a state-space preset accepts.
OBSERVATIONS = ("gaussian", "poisson")


def observation_factory(observation: str, link: str) -> Callable[[tuple[int, ...], tuple[int, ...]], Any] | None:
    """None for the Gaussian read-out (the model's default), else a factory of the Poisson read-out."""
    if observation not in OBSERVATIONS:
        raise ValueError(
            f"observation must be one of {OBSERVATIONS}; got {observation!r}. Use 'poisson' for spike counts."
        )
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}; got {link!r}.")
    if observation == "gaussian":
        if link != "exp":
            raise ValueError("link applies to observation='poisson' only.")
        return None
    return lambda y_dims, latent_dims: PoissonObservation(y_dims, latent_dims, link=link)


def gp_blocks(
    spec: LatentSpec,
    n_regions: int,
    across: KernelFactory,
    within: KernelFactory,
    form: str,
    order: int,
    eps: float,
    delayed: bool = True,
    approximate_sde: bool = False,
) -> tuple[list[nn.Module], list[list[nn.Module]]]:
    """GP latent blocks for every across latent (seen by all regions) and within latent, in ``form``.

    ``form`` is ``"dense"`` (:class:`ExactGPLatent`) or ``"state_space"`` (:class:`MarkovianGPLatent`: an exact SDE
    for undelayed latents whose kernel has one, the kernel's approximate SDE if ``approximate_sde``, else the
    AR(``order``) lift); ``order`` is ignored for dense blocks. ``delayed``: whether the across latents have delays.
    """

    def block(kernel: BaseKernel, n_views: int) -> nn.Module:
        if form == "dense":
            return ExactGPLatent(kernel, n_views=n_views, eps=eps)
        return MarkovianGPLatent(
            kernel, n_views=n_views, order=order, eps=eps, delayed=delayed, approximate_sde=approximate_sde
        )

    acr = [block(across(), n_regions) for _ in range(spec.n_across)]
    wit = [[block(within(), 1) for _ in range(spec.n_within_for(r))] for r in range(n_regions)]
    return acr, wit


class _GPPreset(MultiRegionLatentModel):
    """Shared constructor of the GP presets (GPFA, DLAG, ADM): see :class:`DLAG` for the parameters."""

    alternative_forms = frozenset({"state_space", "dense_gp"})
    #: Engine name used when ``engine`` is None.
    default_engine = "kalman"
    #: Settings of a Gaussian-read-out engine built from a name (by that name), under the user's ``engine_defaults``.
    engine_settings: ClassVar[dict[str, dict[str, Any]]] = {}

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
        engine_defaults: dict[str, Any] | None = None,
        observation: str = "gaussian",
        link: str = "exp",
    ) -> None:
        y_dims, T = check_structure(latent_spec, y_dims, T, type(self).__name__, "the GP timescales (and delays)")
        spec = latent_spec.for_regions(len(y_dims))
        factory = observation_factory(observation, link)
        if factory is None:
            settings = self._settings_for(engine, self.default_engine, engine_defaults)
            eng = resolve_engine(engine, LINEAR_ENGINES, self.default_engine, **settings)
        else:
            # Counts need the state-space engine (Laplace EM), whatever the preset's Gaussian default is. SQUAREM was
            # measured on Gaussian read-outs only, so Laplace EM keeps the preset's other settings without it.
            settings = self._settings_for(engine, "kalman", engine_defaults, drop=("accelerate",))
            eng = resolve_engine(engine, POISSON_ENGINES, "kalman", **settings)
        form = getattr(eng, "latent_form", "state_space")
        # GPFA's latents are all undelayed and take the RBF's SDE form, whose fidelity does not depend on the
        # timescale. The delayed presets keep the AR(P) lift for their within latents too: with the SDE form there,
        # the V1/V2 DLAG-SSM held-out V2 PSTH RMSE rose from 0.0427 to 0.0437 (split seeds 0–2).
        acr, wit = gp_blocks(
            spec,
            len(y_dims),
            kernel_factory_across,
            kernel_factory_within,
            form,
            order,
            eps,
            delayed=delay.learns_delays,
            approximate_sde=not delay.learns_delays,
        )
        super().__init__(spec, y_dims, T, acr, wit, delay, eng, observation=factory)
        self.settings: dict[str, Any] = {
            "order": int(order),
            "eps": float(eps),
            "observation": observation,
            "link": link,
        }
        self.to(dtype=dtype, device=device)

    @classmethod
    def _rebuild_arguments(cls, kw: dict[str, Any], across: KernelFactory, within: KernelFactory) -> dict[str, Any]:
        """Constructor arguments from the saved settings and the saved kernels."""
        if kw.get("deflation") is not None:
            kw["deflation"] = Deflation(**kw["deflation"])
        return {**kw, "kernel_factory_across": across, "kernel_factory_within": within}

    def _initialize_gaussian(self, data: MultiRegionData) -> dict[str, float] | None:
        """Multi-set CCA + AMUSE for the across latents, factor analysis for the within latents."""
        initialize_multi_region(self, data)
        return None

    def _settings_for(
        self, engine: Any, default: str, engine_defaults: dict[str, Any] | None, drop: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The preset's settings for the engine named ``engine`` (``default`` when None; none for an instance),
        without the keys in ``drop``, under the user's ``engine_defaults``."""
        name = default if engine is None else engine
        own = self.engine_settings.get(name.lower(), {}) if isinstance(name, str) else {}
        return {**{k: v for k, v in own.items() if k not in drop}, **(engine_defaults or {})}


class GPFA(_GPPreset):
    """GP factor analysis across regions: shared GP latents seen by every region without delay, plus optional
    private GP latents per region (``n_within=0`` gives classic GPFA).

    Model: ``y^r_t = C^r x^r_t + d^r + e``, ``e ~ N(0, diag R^r)``; each latent an independent unit-variance GP
    (kernel ``k``, nugget ``ε``). ``x^r_t`` stacks the across latents, then region r's within latents.

    Parameters
    ----------
    latent_spec : :class:`~mbrila.LatentSpec` — ``n_across`` shared latents, ``n_within`` private ones per region.
    y_dims : neurons per region.
    T : trial length (bins) the model is built for, at least 2 (a single bin says nothing about timescales).
        ``fit``, ``infer`` and ``predict`` take trials of at most ``T`` bins (ragged trials: their padded length).
    engine : ``"kalman"`` (default: GPFA-SSM, the GP lifted to a state-space model and fitted by
        :class:`~mbrila.inference.KalmanEMEngine`), ``"exact"`` (dense GP covariance,
        :class:`~mbrila.inference.ExactEMEngine`) or an engine instance.
    kernel_factory_across, kernel_factory_within : zero-argument callables returning a fresh kernel for each
        latent (default: RBF, 5-bin starting timescale, re-estimated by the initialisation).
    order : AR order ``P`` of the state-space lift (ignored by the exact engine, by Matérn latents without delay,
        which use their exact SDE, and by GPFA's RBF latents, which use the RBF's SDE approximation
        :meth:`~mbrila.kernels.RBFKernel.state_space_form`, whose error does not depend on the timescale; DLAG's and
        ADM's RBF latents, within latents included, use the lift).
    eps : GP nugget ``ε`` (fixed).
    dtype, device : of the parameters (data are moved to them).
    engine_defaults : keyword arguments for the engine built from a name (e.g. ``{"tol": 1e-6}``).
    observation : ``"gaussian"`` (default: the linear-Gaussian read-out) or ``"poisson"`` (spike counts,
        ``y ~ Poisson(f(c_nᵀx + d_n))``, :class:`~mbrila.observations.PoissonObservation`, fitted by Laplace EM,
        :class:`~mbrila.inference.LaplaceEMEngine`; ``engine`` then defaults to ``"kalman"``, the only engine that
        fits counts).
    link : the rate link ``f`` of a Poisson read-out: ``"exp"`` (default) or ``"softplus"``.
    """

    def __init__(self, latent_spec: LatentSpec, y_dims: Sequence[int], T: int, **kw: Any) -> None:
        """Build a GPFA model; the parameters are described in the class docstring."""
        y_dims, T = check_structure(latent_spec, y_dims, T, "GPFA", "the GP timescales")
        spec = latent_spec.for_regions(len(y_dims))
        super().__init__(spec, y_dims, T, delay=NoDelay(len(y_dims), spec.n_across), **kw)


class DLAG(_GPPreset):
    """Delayed latents across groups (Gokcen et al. 2022): across latents seen by every region with one constant
    delay per region and latent, plus private within latents per region.

    Model: across latent ``k`` is one GP seen by region ``r`` at ``t − δ_k^r`` (region 0 the reference, ``δ^0 = 0``;
    ``δ > 0``: region r lags), ``Cov(x_k^r(t), x_k^s(t')) = (1−ε) k_k(t − δ_k^r − t' + δ_k^s) + ε 1[r=s, t=t']``;
    ``y^r_t = C^r x^r_t + d^r + e``, ``e ~ N(0, diag R^r)``.

    Parameters
    ----------
    latent_spec, y_dims, T : as :class:`GPFA`.
    engine : ``"exact"`` (default: DLAG as published — the dense GP covariance, exact E-step,
        :class:`~mbrila.inference.ExactEMEngine`), ``"kalman"`` (DLAG-SSM: the AR(P) lift fitted by
        :class:`~mbrila.inference.KalmanEMEngine`, linear in ``T``) or an engine instance. ``"kalman"`` accelerates
        EM with SQUAREM (:data:`ACCELERATE`; ``engine_defaults={"accelerate": None}`` turns it off; ``{"accelerate":
        "squarem"}`` turns it on for ``"exact"``).
    max_delay : bound on ``|δ|`` in bins (default ``T / 4``).
    kernel_factory_across, kernel_factory_within, order, eps, dtype, device, engine_defaults : as :class:`GPFA`.
    observation, link : as :class:`GPFA` (counts: ``observation="poisson"``, fitted as DLAG-SSM by Laplace EM).
    """

    default_engine = "exact"
    engine_settings: ClassVar[dict[str, dict[str, Any]]] = {"kalman": {"accelerate": ACCELERATE}}

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        max_delay: float | None = None,
        **kw: Any,
    ) -> None:
        """Build a DLAG model; the parameters are described in the class docstring."""
        y_dims, T = check_structure(latent_spec, y_dims, T, "DLAG", "the GP timescales and delays")
        spec = latent_spec.for_regions(len(y_dims))
        bound = max_delay if max_delay is not None else default_max_delay(T)
        delay = FixedDelay(len(y_dims), spec.n_across, max_delay=bound)
        super().__init__(spec, y_dims, T, delay=delay, **kw)
        self.settings["max_delay"] = float(bound)


class ADM(_GPPreset):
    """Adaptive delay model: each across latent has its own smooth delay trajectory δ_k^r(t) per region.

    Model: as :class:`DLAG` with ``δ_k^r`` replaced by ``δ_k^r(t)`` (a smooth basis expansion with a
    second-difference prior, :class:`~mbrila.delays.TimeVaryingDelay`); the lifted state-space model is
    time-varying (``A_t, Q_t`` from the delayed kernel at every step). ``fit`` initialises as DLAG does (constant
    delays), then runs a rank-1 deflation stage that fits one across latent at a time on the residual
    (:mod:`mbrila.init.deflation`) before the joint fit.

    Parameters
    ----------
    latent_spec : as :class:`GPFA`.
    y_dims : neurons per region, at least 2 regions (the delays are between regions; GPFA fits a single one).
    T : trial length (bins), at least 2. Data must have exactly ``T`` bins (the delay trajectories live on them);
        pad shorter trials to ``T`` and pass their ``lengths``.
    max_delay : bound on ``|δ(t)|`` in bins (default ``T / 4``).
    n_basis : basis functions per delay trajectory (default ``max(4, T // 4)``, at most ``T``, see
        :class:`~mbrila.delays.TimeVaryingDelay`).
    smoothness : weight ``λ`` of the second-difference prior on δ(t) (default :data:`DEFAULT_SMOOTHNESS`).
    deflation : :class:`~mbrila.init.Deflation` settings, or None to skip the stage.
    engine : ``"kalman"`` (default; with ``tol =`` :data:`ADM_TOL` and SQUAREM, :data:`ACCELERATE`) or an engine
        instance.
    kernel_factory_across, kernel_factory_within, order, eps, dtype, device, observation, link : as :class:`GPFA`.
    """

    engine_settings: ClassVar[dict[str, dict[str, Any]]] = {"kalman": {"tol": ADM_TOL, "accelerate": ACCELERATE}}

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
        **kw: Any,
    ) -> None:
        """Build an ADM model; the parameters are described in the class docstring."""
        y_dims, T = check_structure(latent_spec, y_dims, T, "ADM", "the GP timescales and delay trajectories")
        if len(y_dims) < 2:
            raise ValueError(
                f"ADM needs at least 2 regions (its delays are between regions); y_dims has 1: {y_dims}. Use GPFA "
                "for a single region."
            )
        if n_basis is None and T < 4:
            n_basis = T  # the default max(4, T // 4) would not fit in so few bins
        spec = latent_spec.for_regions(len(y_dims))
        bound = max_delay if max_delay is not None else default_max_delay(T)
        delay = TimeVaryingDelay(len(y_dims), spec.n_across, T, n_basis=n_basis, max_delay=bound, smoothness=smoothness)
        super().__init__(spec, y_dims, T, delay=delay, **kw)
        self.deflation = deflation
        self.settings.update(
            max_delay=float(bound),
            n_basis=delay.n_basis,
            smoothness=float(smoothness),
            deflation=None if deflation is None else dataclasses.asdict(deflation),
        )

    def _initialize_gaussian(self, data: MultiRegionData) -> dict[str, float] | None:
        """DLAG's initialisation (constant delays), then the deflation stage; returns the time of each stage."""
        t0 = time.perf_counter()
        initialize_multi_region(self, data)
        t1 = time.perf_counter()
        if self.deflation is None or self.latent_spec.n_across == 0:
            return {"multi_region": t1 - t0}

        ref = self._reference()
        delay = cast(TimeVaryingDelay, self.delay)
        blk = self.across[0]

        def build_single(kernel: BaseKernel) -> ADM:
            # The same delay parametrisation, latent form and engine settings as this model, for one across latent
            # and no within latents.
            return ADM(
                LatentSpec(1, 0),
                self.y_dims,
                self.T,
                max_delay=delay.max_delay,
                n_basis=delay.n_basis,
                smoothness=delay.smoothness,
                deflation=None,
                kernel_factory_across=lambda: kernel,
                order=getattr(blk, "order", DEFAULT_ORDER),
                eps=float(getattr(blk, "eps", DEFAULT_EPS)),
                engine=copy.deepcopy(self.engine),
                dtype=ref.dtype,
                device=ref.device,
            )

        deflate_across(self, data, build_single, self.deflation)
        return {"multi_region": t1 - t0, "deflation": time.perf_counter() - t1}


class LDS(MultiRegionLatentModel):
    """Free linear dynamical system baseline: shared LDS latents (``n_across``) and private ones per region.

    Model: ``s_{t+1} = A s_t + w``, ``w ~ N(0, Q)`` per block (learned ``A, Q, P0``), read out by every region
    (shared block) or by its own region (within block); ``y^r_t = C^r x^r_t + d^r + e``.

    Parameters
    ----------
    latent_spec, y_dims, T : as :class:`GPFA` (``T ≥ 2``: the dynamics need at least one transition).
    engine : ``"kalman"`` (the only engine with a free LDS prior) or an engine instance.
    dtype, device : of the parameters.
    observation, link : as :class:`GPFA` (``"poisson"``: a Poisson LDS, fitted by Laplace EM).
    """

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        *,
        engine: Any = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        observation: str = "gaussian",
        link: str = "exp",
    ) -> None:
        """Build an LDS model; the parameters are described in the class docstring."""
        y_dims, T = check_structure(latent_spec, y_dims, T, "LDS", "the dynamics (A, Q)")
        spec = latent_spec.for_regions(len(y_dims))
        n_r = len(y_dims)
        acr = [FreeLDSLatent(spec.n_across, n_groups=n_r)] if spec.n_across else []
        wit = [[FreeLDSLatent(spec.n_within_for(r))] if spec.n_within_for(r) else [] for r in range(n_r)]
        factory = observation_factory(observation, link)
        engines: dict[str, type] = {"kalman": KalmanEMEngine if factory is None else LaplaceEMEngine}
        eng = resolve_engine(engine, engines, "kalman")
        super().__init__(spec, y_dims, T, acr, wit, NoDelay(n_r, spec.n_across), eng, observation=factory)
        self.settings = {"observation": observation, "link": link}
        self.to(dtype=dtype, device=device)

    def _initialize_gaussian(self, data: MultiRegionData) -> dict[str, float] | None:
        initialize_multi_region(self, data, set_delays=False, set_timescales=False)
        return None
