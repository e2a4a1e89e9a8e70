"""A multi-region latent model: latent blocks + delays + an observation + the engine that fits them.

Generative model (trials independent), for regions ``r`` and time steps ``t``::

    x_t = [x^1_t; …; x^R_t]          region r: its across latents as seen from r (delayed), then its within latents
    x ~ a prior made of independent blocks, one per latent process:
        a GP latent (kernel k, nugget ε), seen by its regions at t − δ^r(t), as a dense covariance
        (:class:`~mbrila.dynamics.ExactGPLatent`) or lifted to a state-space block
        (:class:`~mbrila.dynamics.MarkovianGPLatent`); or a free linear dynamical system
    y^r_t = C^r x^r_t + d^r + e_t,   e_t ~ N(0, diag R^r)   (or the variational ARD read-out of mDLAG)

Presets (:mod:`mbrila.models.presets`, :mod:`mbrila.models.mdlag`) choose the blocks, the delay, the observation
and the engine; this class assembles them and implements the user-facing methods. The engine does the inference
(``fit``, and the posterior behind ``infer`` and ``predict``); what it needs from the model is checked by
capability when the model is built (:mod:`mbrila.core.capabilities`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.core.results import FitResult, Posterior
from mbrila.delays import Delay, NoDelay
from mbrila.dynamics import BlockMoments, ComposedPrior, compose, expected_log_prior
from mbrila.dynamics.gp_latent import grouped_expected_log_prior, lifted_group_key, stack_moments
from mbrila.inference.kalman import LGSSM
from mbrila.inference.loop_state import LoopState
from mbrila.init.checks import check_fittable, warn_ill_posed
from mbrila.init.counts import initialize_from_counts
from mbrila.models.checkpoints import data_fingerprint, read_checkpoint, write_checkpoint
from mbrila.models.serialization import spec_config, spec_from_config
from mbrila.observations.linear import MultiRegionLinearObservation
from mbrila.observations.poisson import PoissonObservation


def _whole_number(x: Any) -> int | None:
    """``x`` as an int when it is a whole number (not a bool, a string or None), else None."""
    if x is None or isinstance(x, bool | np.bool_ | str | bytes):
        return None
    try:
        i, f = int(x), float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return i if f == i else None


def _check_dims(y_dims: Sequence[int], T: int) -> tuple[int, ...]:
    """``y_dims`` as a tuple of positive ints (and ``T`` a positive int), else a ``ValueError`` saying which."""
    try:
        items = [] if isinstance(y_dims, str | bytes) else list(y_dims)
    except TypeError:
        items = []
    dims = tuple(_whole_number(n) for n in items)
    if not dims or any(n is None or n < 1 for n in dims):
        raise ValueError(
            f"y_dims must list a positive whole neuron count per region, e.g. (30, 25); got {y_dims!r}. A region "
            "without neurons has nothing to fit: leave it out."
        )
    t = _whole_number(T)
    if t is None or t < 1:
        raise ValueError(f"T must be a positive number of time bins; got {T!r}.")
    return cast(tuple[int, ...], dims)


def _whole(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value == int(value)
    )


def _check_fit_arguments(max_iter: Any, tol: Any, callback: Any, checkpoint_every: Any) -> None:
    """ValueError / TypeError naming the first bad argument of :meth:`MultiRegionLatentModel.fit`."""
    if max_iter is not None and not (_whole(max_iter) and max_iter >= 0):
        raise ValueError(
            f"max_iter must be a whole number of iterations ≥ 0 (or None for the engine's); got {max_iter!r}."
        )
    if tol is not None and not (
        isinstance(tol, (int, float)) and not isinstance(tol, bool) and math.isfinite(tol) and tol >= 0
    ):
        raise ValueError(f"tol must be a finite relative tolerance ≥ 0 (or None for the engine's); got {tol!r}.")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(k, score) or None; got {type(callback).__name__}.")
    if not (_whole(checkpoint_every) and checkpoint_every >= 1):
        raise ValueError(f"checkpoint_every must be a positive number of iterations; got {checkpoint_every!r}.")


class MultiRegionLatentModel(nn.Module):
    """Across and within latent blocks + delays + an observation + an engine (see the module docstring).

    Parameters
    ----------
    latent_spec : counts of across and within latents.
    y_dims : neurons per region.
    T : trial length the model is built for (delays are returned for this length). ``fit``, ``infer`` and
        ``predict`` take trials of at most ``T`` bins with constant delays (or none), and of exactly ``T`` bins with
        time-varying delays, whose trajectories δ(t) live on those bins; ragged trials count by their padded
        length. Anything else is refused with a ``ValueError``.
    across : one block per across latent, each with ``n_views = n_regions`` (or one free-LDS block whose
        views cover every region's across latents).
    within : per region, the blocks of its within latents.
    delay : the delay parametrisation of the across latents (None: no delays).
    engine : the inference engine that fits the model.
    observation : the read-out, or a factory ``observation(y_dims, latent_dims)`` building it (default: a
        :class:`~mbrila.observations.MultiRegionLinearObservation`).
    """

    #: The read-out: a MultiRegionLinearObservation, or an ARDObservation for MDLAG (both expose region_blocks,
    #: mean_loadings, at_floor and set_floor; engines use the rest by capability).
    observation: Any

    #: Capabilities a preset could also provide by building its latents in another form (a GP preset builds
    #: dense or state-space blocks, whichever its engine asks for); used to list the engines that would work.
    alternative_forms: ClassVar[frozenset[str]] = frozenset()

    #: The constructor arguments other than the structure, kernels, engine, dtype and device, as plain data
    #: (presets fill it; :meth:`config` and model files use it). None: the model cannot be saved.
    settings: dict[str, Any] | None = None

    #: Whether ``fit`` warns about a region with more latents than neurons (off where the model prunes latents).
    warns_latents_over_neurons: ClassVar[bool] = True

    #: The region names of the data of the first fit (None before it); later data must name the same regions in the
    #: same order.
    region_names: tuple[str, ...] | None

    def __init__(
        self,
        latent_spec: LatentSpec,
        y_dims: Sequence[int],
        T: int,
        across: Sequence[nn.Module],
        within: Sequence[Sequence[nn.Module]],
        delay: Delay | None,
        engine: Any,
        observation: nn.Module | Callable[[tuple[int, ...], tuple[int, ...]], nn.Module] | None = None,
    ) -> None:
        """Assemble the model; the parameters are described in the class docstring."""
        super().__init__()
        y_dims = _check_dims(y_dims, T)
        n_regions = len(y_dims)
        self.latent_spec = latent_spec.for_regions(n_regions)
        self.y_dims = y_dims
        self.T = int(T)
        self.n_regions = n_regions
        self.across = nn.ModuleList(across)
        self.within = nn.ModuleList(nn.ModuleList(w) for w in within)
        self.delay = delay if delay is not None else NoDelay(n_regions, self.latent_spec.n_across)
        dims = tuple(self.latent_spec.n_across + self.latent_spec.n_within_for(r) for r in range(n_regions))
        self.latent_dims = dims
        if observation is None:
            observation = MultiRegionLinearObservation(y_dims, dims)
        elif not isinstance(observation, nn.Module):
            observation = observation(y_dims, dims)
        self.observation = observation
        self.engine = engine
        self.region_names = None
        engine.check_model(self)

    # ---------------------------------------------------------------- model files
    def config(self) -> dict[str, Any]:
        """The constructor arguments as plain data: ``latent_spec``, ``y_dims``, ``T`` and :attr:`settings` (model
        files store kernels, engine and tensors beside it)."""
        if self.settings is None:
            raise TypeError(
                f"{type(self).__name__} cannot be saved: only presets record their constructor arguments "
                "(a subclass sets self.settings and, if its constructor differs, _rebuild_arguments)."
            )
        return {**spec_config(self.latent_spec, self.y_dims, self.T), **self.settings}

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        *,
        engine: Any,
        across: Callable[[], Any],
        within: Callable[[], Any],
        dtype: torch.dtype,
        device: torch.device | str | None,
    ) -> MultiRegionLatentModel:
        """The model :meth:`config` describes, with this engine and the kernels the factories hand out."""
        spec, y_dims, T, kw = spec_from_config(config)
        kw = cls._rebuild_arguments(kw, across, within)
        return cls(spec, y_dims, T, engine=engine, dtype=dtype, device=device, **kw)  # type: ignore[call-arg]

    @classmethod
    def _rebuild_arguments(
        cls, kw: dict[str, Any], across: Callable[[], Any], within: Callable[[], Any]
    ) -> dict[str, Any]:
        """Constructor keyword arguments from the saved :attr:`settings` (presets with kernels add the factories)."""
        return kw

    # ---------------------------------------------------------------- capabilities
    @property
    def capabilities(self) -> frozenset[str]:
        """What this model provides to an engine (:mod:`mbrila.core.capabilities`)."""
        blocks = [blk for blk, _, _ in self.blocks()]
        caps = set(getattr(self.observation, "capabilities", frozenset()))
        if all(hasattr(b, "transition") for b in blocks):
            caps.add("state_space")
        if blocks and all(hasattr(b, "covariance") for b in blocks):
            caps.add("dense_gp")
        kernels = [getattr(b, "kernel", None) for b in blocks]
        if all(k is not None for k in kernels):
            caps.add("kernel")
            if all(k.has_spectral_density for k in kernels):  # type: ignore[union-attr]
                caps.add("spectral_density")
        if self.delay.constant:
            caps.add("constant_delay")
        return frozenset(caps)

    @property
    def offered_capabilities(self) -> frozenset[str]:
        """:attr:`capabilities` plus those another latent form of this preset would provide."""
        return self.capabilities | self.alternative_forms

    # ---------------------------------------------------------------- structure
    def _offsets(self) -> list[int]:
        out, o = [], 0
        for k in self.latent_dims:
            out.append(o)
            o += k
        return out

    def blocks(self) -> list[tuple[nn.Module, list[int], int | None]]:
        """Every block with the rows of ``x`` its views feed and, for GP across latents, its latent index."""
        off = self._offsets()
        n_a = self.latent_spec.n_across
        out: list[tuple[nn.Module, list[int], int | None]] = []
        for k, blk in enumerate(self.across):
            n_views = int(blk.n_views)  # type: ignore[arg-type]
            if n_views == self.n_regions:
                out.append((blk, [off[r] + k for r in range(self.n_regions)], k))
            else:  # a multi-dimensional free LDS: every region reads all n_across entries
                out.append((blk, [off[r] + i for r in range(self.n_regions) for i in range(n_a)], None))
        for r, blks in enumerate(self.within):
            j = 0
            for blk in cast(nn.ModuleList, blks):
                n_views = int(blk.n_views)  # type: ignore[arg-type]
                out.append((blk, [off[r] + n_a + j + i for i in range(n_views)], None))
                j += n_views
        return out

    def inactive_blocks(self) -> list[int]:
        """Indices (in :meth:`blocks` order) of blocks that no longer enter the model (none here; MDLAG lists
        its pruned latents)."""
        return []

    def view_rows(self) -> list[list[int]]:
        """For each block, the row of ``x`` that each of its views feeds."""
        return [rows for _, rows, _ in self.blocks()]

    def _latent_delays(self, k: int | None, T: int) -> Tensor | None:
        return None if k is None else self.delay.latent_delays(k, T)

    def _require(self, capability: str, what: str) -> None:
        if capability not in self.capabilities:
            raise ValueError(
                f"{type(self).__name__}.{what} needs latent blocks with {capability!r}; this model's blocks are "
                f"{sorted({type(b).__name__ for b, _, _ in self.blocks()})} (build it with an engine that uses them)."
            )

    def _active_blocks(self, skip: Sequence[int]) -> list[tuple[nn.Module, list[int], int | None]]:
        return [b for i, b in enumerate(self.blocks()) if i not in set(skip)]

    def block_transitions(self, T: int, skip: Sequence[int] = ()) -> list:
        self._require("state_space", "block_transitions")
        return [blk.transition(self._latent_delays(k, T)) for blk, _, k in self._active_blocks(skip)]  # type: ignore[operator]

    def prior(self, T: int | None = None, skip: Sequence[int] = ()) -> ComposedPrior:
        """The composed state-space prior (state-space blocks only), without the blocks listed in ``skip``
        (their rows of ``x`` are then read out as zero)."""
        T = self.T if T is None else T
        rows = [rows for _, rows, _ in self._active_blocks(skip)]
        return compose(self.block_transitions(T, skip), rows, sum(self.latent_dims), T)

    def dense_covariances(self, T: int | None = None) -> list[Tensor]:
        """Per block, its dense prior covariance ``(V·T, V·T)`` (dense GP blocks only; differentiable)."""
        T = self.T if T is None else T
        self._require("dense_gp", "dense_covariances")
        return [blk.covariance(self._latent_delays(k, T), T) for blk, _, k in self.blocks()]  # type: ignore[operator]

    def lgssm(self, T: int | None = None, prior: ComposedPrior | None = None) -> LGSSM:
        """The full linear-Gaussian state-space model (``C = C_obs H``; state-space blocks, linear read-out)."""
        prior = self.prior(T) if prior is None else prior
        obs = self.observation
        return LGSSM(
            A=prior.A,
            Q=prior.Q,
            m0=prior.P0.new_zeros(prior.P0.shape[-1]),
            P0=prior.P0,
            C=obs.C @ prior.H,
            d=obs.d,
            R=getattr(obs, "R", None),  # a Poisson read-out has no noise variance
        )

    def expected_log_prior(
        self, moments: Any, prior_slices: Sequence[slice], T: int, skip: Sequence[int] = ()
    ) -> Tensor:
        """Σ over GP blocks of the expected complete-data log prior (differentiable in kernels and delays), for a
        prior composed without the blocks in ``skip``."""
        return self.expected_log_prior_fn(moments, prior_slices, T, skip)()

    def expected_log_prior_fn(
        self, moments: Any, prior_slices: Sequence[slice], T: int, skip: Sequence[int] = ()
    ) -> Callable[[], Tensor]:
        """:meth:`expected_log_prior` as a function of the current kernel and delay parameters.

        The moments each block needs are gathered once here, not at every optimiser step. AR-lifted GP latents
        of one shape are evaluated as one batch, so a step costs about the same for 2 latents as for 20 (at these
        sizes its cost is per-operation overhead, not arithmetic).
        """
        ref = self._reference()
        grouped: dict[tuple, list[tuple[Any, int | None, BlockMoments]]] = {}
        singles: list[tuple[Any, int | None, BlockMoments]] = []
        for (blk, _, k), sl in zip(self._active_blocks(skip), prior_slices, strict=True):
            if not any(p.requires_grad for p in blk.parameters()) and k is None:
                continue
            with torch.no_grad():
                delays = self._latent_delays(k, T)
            key = lifted_group_key(blk, delays)
            if key is not None:
                constant = delays is None or delays.ndim == 1  # SDE latents and constant delays: time-invariant
                grouped.setdefault(key, []).append((blk, k, moments.block(sl, sum_over_time=constant)))
                continue
            with torch.no_grad():
                time_varying = blk.transition(delays).A.ndim == 3  # type: ignore[operator]
            singles.append((blk, k, moments.block(sl, sum_over_time=not time_varying)))
        groups = [
            ([m[0] for m in g], [m[1] for m in g], stack_moments([m[0] for m in g], [m[2] for m in g]))
            for g in grouped.values()
        ]

        def objective() -> Tensor:
            total = torch.zeros((), dtype=ref.dtype, device=ref.device)
            for blk, k, mom in singles:
                total = total + expected_log_prior(blk.transition(self._latent_delays(k, T)), mom)
            for blks, ks, gmom in groups:
                total = total + grouped_expected_log_prior(blks, [self._latent_delays(k, T) for k in ks], gmom)
            return total

        return objective

    def dynamics_parameters(self) -> list[nn.Parameter]:
        """Parameters learned by gradient steps: kernel hyper-parameters and delays."""
        params = [p for p in self.across.parameters() if p.requires_grad]
        params += [p for p in self.within.parameters() if p.requires_grad]
        params += [p for p in self.delay.parameters() if p.requires_grad]
        return params

    def sde_parameters(self) -> list[nn.Parameter]:
        """The learned kernel parameters of latents whose state is an SDE (EM over-relaxes their updates)."""
        params: list[nn.Parameter] = []
        for blk, _, _ in self.blocks():
            if getattr(blk, "uses_sde", False):
                params += [p for p in blk.kernel.parameters() if p.requires_grad]  # type: ignore[union-attr]
        return params

    def _reference(self) -> Tensor:
        """A tensor with the model's dtype and device (the observation's first buffer)."""
        return next(iter(self.observation.buffers()))

    # ---------------------------------------------------------------- data handling
    def _data(self, data: MultiRegionData) -> tuple[Tensor, Tensor | None]:
        if not isinstance(data, MultiRegionData):
            raise ValueError(
                f"data must be a mbrila.MultiRegionData; got {type(data).__name__}. "
                "Build one with mbrila.MultiRegionData.from_regions({...})."
            )
        if tuple(data.y_dims) != self.y_dims:
            raise ValueError(f"data has y_dims {tuple(data.y_dims)} but the model was built for {self.y_dims}.")
        self._check_region_names(data)
        self._check_trial_length(data)
        ref = self._reference()
        y = data.y.to(device=ref.device, dtype=ref.dtype)
        mask = None if data.mask is None else data.mask.to(ref.device)
        return y, mask

    def _check_region_names(self, data: MultiRegionData) -> None:
        """Refuse data whose regions differ (in names or order) from those of the first fit."""
        names = tuple(data.region_names)
        if self.region_names is None or names == self.region_names:
            return
        if sorted(names) == sorted(self.region_names):
            raise ValueError(
                f"data has regions {names} but the model was fitted on {self.region_names}: the same regions in "
                f"another order would be read with each other's loadings. Reorder the regions to "
                f"{self.region_names} (from_regions keeps the order of its dict)."
            )
        raise ValueError(
            f"data has regions {names} but the model was fitted on {self.region_names}. If these are the same "
            f"regions under other names, rename them (region_names=...) and pass them in the model's order; to use "
            "the model on other regions on purpose, set model.region_names = None first."
        )

    def _check_trial_length(self, data: MultiRegionData) -> None:
        """Refuse trials longer than :attr:`T` (constant or no delays) or of another length (time-varying delays)."""
        T = int(data.T)
        name = type(self).__name__
        if not self.delay.constant and T != self.T:
            raise ValueError(
                f"data has T = {T} time bins but this {name} model was built for T = {self.T}: its time-varying "
                f"delays δ(t) are defined on exactly those {self.T} bins. Build the model with T={T}, or pad the "
                f"trials to {self.T} bins and pass their lengths (MultiRegionData(..., lengths=...))."
            )
        if T > self.T:
            raise ValueError(
                f"data has T = {T} time bins but this {name} model was built for T = {self.T}, the longest trials it "
                f"takes (delays() describes those {self.T} bins). Build the model with T={T} (or more) for these "
                "trials; shorter and ragged trials are fine."
            )

    def _check_training_data(self, data: MultiRegionData, y: Tensor, mask: Tensor | None) -> None:
        """Before a fit on ``data`` (``y``, ``mask``: as :meth:`_data` returned them): check its region names again
        (a resumed checkpoint may have set them), refuse data with nothing to fit (a neuron never observed, every
        neuron constant), remember the region names on the first fit, and warn
        (:class:`~mbrila.init.DataWarning`) about data that make the model ill-posed (:mod:`mbrila.init.checks`)."""
        self._check_region_names(data)
        check_fittable(y, mask, self.y_dims, data.region_names)
        if self.region_names is None:
            self.region_names = tuple(data.region_names)
        latents = None
        if self.warns_latents_over_neurons:
            n_a = self.latent_spec.n_across
            latents = [(n_a, self.latent_spec.n_within_for(r)) for r in range(self.n_regions)]
        warn_ill_posed(y, mask, self.y_dims, self.region_names, latents, stacklevel=3)

    # ---------------------------------------------------------------- user API
    def fit(
        self,
        data: MultiRegionData,
        max_iter: int | None = None,
        tol: float | None = None,
        callback: Callable[[int, float], bool | None] | None = None,
        progress: bool = True,
        init: bool | Callable[[MultiRegionLatentModel, MultiRegionData], None] = True,
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 10,
        resume: str | Path | None = None,
    ) -> FitResult:
        """Initialise (unless ``init=False``), then fit with the model's engine.

        Parameters
        ----------
        data : training trials.
        max_iter, tol : iterations and relative convergence tolerance (engine defaults when None).
        callback : called as ``callback(k, score)`` after each E-step, while the model holds the parameters
            ``θ_k`` that ``score`` belongs to (``k = 0``: the initialised parameters); returning True ends the fit
            there, leaving the model at ``θ_k``.
        progress : show a progress bar.
        init : True runs the preset's recommended initialisation (:meth:`initialize`); False keeps the current
            parameters; a callable ``init(model, data)`` runs your own.
        checkpoint : a file to which the model and the EM loop's state are written (atomically: a temporary file
            renamed over it) after the initialisation, every ``checkpoint_every`` iterations and when the fit
            ends (:mod:`mbrila.models.checkpoints`).
        checkpoint_every : iterations between checkpoints.
        resume : a checkpoint written by a fit of this model on the same data: its parameters and loop state are
            loaded and the fit continues from there (no initialisation), ending with the parameters and score
            trace of the uninterrupted fit. Pass the same ``max_iter``/``tol`` as the original fit. ``resume`` may
            equal ``checkpoint``.
        """
        _check_fit_arguments(max_iter, tol, callback, checkpoint_every)
        y, mask = self._data(data)
        fingerprint = data_fingerprint(y, mask) if checkpoint is not None or resume is not None else {}
        start = None
        if resume is not None:
            start = read_checkpoint(resume, self, fingerprint)  # loads the parameters it holds
            init = False
        self._check_training_data(data, y, mask)
        t0 = time.perf_counter()
        stages = None
        if init is True:
            stages = self.initialize(data)
        elif callable(init):
            init(self, data)
        init_time = time.perf_counter() - t0
        writer = None
        if checkpoint is not None:
            path = Path(checkpoint)

            def writer(loop: LoopState) -> None:
                write_checkpoint(path, self, loop, fingerprint)

        result = self.engine.fit(
            self,
            data,
            max_iter=max_iter,
            tol=tol,
            callback=callback,
            progress=progress,
            checkpoint=writer,
            checkpoint_every=int(checkpoint_every),
            start=start,
        )
        result.init_time_s = init_time
        for name, seconds in (stages or {}).items():
            result.timings[f"init_{name}"] = seconds
        result.wall_time_s += init_time
        return result

    def initialize(self, data: MultiRegionData) -> dict[str, float] | None:
        """The recommended initialisation (it may return the seconds of each stage).

        The preset's recipe for a linear-Gaussian read-out is :meth:`_initialize_gaussian`; a Poisson read-out runs
        that recipe on the square-root counts (:func:`~mbrila.init.counts.initialize_from_counts`).
        """
        if isinstance(self.observation, PoissonObservation):
            return initialize_from_counts(self, data, type(self)._initialize_gaussian)
        return self._initialize_gaussian(data)

    def _initialize_gaussian(self, data: MultiRegionData) -> dict[str, float] | None:
        """The preset's initialisation for a linear-Gaussian read-out; presets override it. The base model keeps
        its parameters."""
        return None

    @torch.no_grad()
    def _posterior(self, data: MultiRegionData, observed: Tensor | None = None) -> Posterior:
        y, mask = self._data(data)
        neurons = None
        if observed is not None:
            obs = torch.as_tensor(observed, device=y.device)
            if obs.dtype != torch.bool:
                raise TypeError(
                    f"observed must be a bool mask (True = used for inference); got dtype {obs.dtype}. Pass a bool "
                    "tensor, e.g. observed.bool() or observed == 1."
                )
            B, T, N = y.shape
            if tuple(obs.shape) == (N,):
                neurons = obs
                y = y[..., obs]
                mask = None if mask is None else mask[..., obs]
            elif tuple(obs.shape) == (B, T, N):
                mask = obs if mask is None else (mask & obs)
            else:
                raise ValueError(
                    f"observed must be a bool per-neuron mask of shape ({N},) or a per-entry mask of shape "
                    f"({B}, {T}, {N}) (trials, T, N); got shape {tuple(obs.shape)}."
                )
        return self.engine.posterior(self, y, mask, neurons)

    @torch.no_grad()
    def infer(self, data: MultiRegionData) -> Posterior:
        """Posterior means and covariances of the region latents ``x`` for every trial."""
        return self._posterior(data)

    @torch.no_grad()
    def predict(self, data: MultiRegionData, observed: Tensor | None = None) -> Tensor:
        """``E[y | observed entries]`` for every entry: co-smoothing when ``observed`` hides some neurons.

        Parameters
        ----------
        observed : a bool mask of shape exactly ``(N,)`` (per neuron) or ``(trials, T, N)``; True = used for
            inference. None uses all. Another shape is a ``ValueError``, another dtype a ``TypeError``.

        Returns ``(trials, T, N)`` predictions ``C E[x_t | observed] + d`` (posterior means of ``C`` and ``d``
        for the variational ARD read-out); for a Poisson read-out, the expected rates ``E[f(c_nᵀx_t + d_n)]``
        under the (Laplace) posterior of ``x_t``.
        """
        post = self._posterior(data, observed)
        C, d = self.observation.mean_loadings()
        mean = post.mean @ C.mT + d
        if not hasattr(self.observation, "expected_rate"):
            return mean
        var = torch.zeros_like(mean)
        for neurons, lat in self.observation.region_blocks():
            # Per region: the drive's variance c_nᵀ V_t c_n over the region's own latents only.
            Cr = C[neurons, lat]
            var[..., neurons] = torch.einsum("btij,nj,ni->btn", post.cov[..., lat, lat], Cr, Cr)
        return self.observation.expected_rate(mean, var)

    def save(self, path: str) -> None:
        """Save the model (versioned; reload with :func:`mbrila.load`)."""
        from mbrila.models.registry import save

        save(self, path)

    @torch.no_grad()
    def delays(self) -> Tensor:
        """``(T, n_regions, n_across)`` delays in bins over the model's ``T`` bins (which cover every trial the model
        accepts, see the class docstring); column 0 (the reference region) is zero.

        Convention: region ``r`` sees across latent ``k`` at ``t − δ_k^r(t)``, so ``δ > 0`` means region ``r``
        lags the reference region 0.
        """
        return self.delay.delays(self.T).detach().clone()

    def noise_floor_neurons(self) -> list[list[int]]:
        """Per region, the indices (within the region) of neurons whose noise variance ended on the floor.

        A non-empty list means some latents track single neurons (Heywood cases; DLAG's code warns about the
        same thing): those latents say little about shared activity. Only meaningful after :meth:`fit`.
        """
        flags = self.observation.at_floor().cpu()
        return [torch.nonzero(flags[neurons]).flatten().tolist() for neurons, _ in self.observation.region_blocks()]

    @torch.no_grad()
    def timescales(self) -> dict[str, Any]:
        """Kernel timescales (bins): ``{"across": (n_across,), "within": [(n_within_r,) per region]}``.

        Each is the timescale ``ℓ`` of the latent's kernel (for the RBF, ``k(τ) = exp(−τ²/2ℓ²)``). How closely the
        fitted prior follows that kernel depends on the latent's form:

        * dense GP (exact engines): exactly;
        * an SDE (GPFA's RBF latents; Matérn latents without delay): within ``kernel.state_space_error`` of the
          kernel's covariance at every lag and every timescale (0.0016 for the RBF's default order 8, 0 for
          Matérn); measured on 3/6/12-bin latents, GPFA's timescales were within 1.6 % of the dense GP's;
        * the AR(P) lift (delayed latents, DLAG's and ADM's within latents, kernels without an SDE form): the
          first ``P`` lags exactly, beyond them the AR recursion, so the error grows with ``ℓ / P``: at the default
          ``P = 4`` the dense GP's log-likelihood per observation is missed by 0.002–0.024 nats for ℓ from 1 to 30
          bins without delays, and fitted timescales of 6 and 12 bins came out 9 % and 3 % low (DLAG-SSM, three
          regions; one population with the AR(4) lift: up to 13 % low and 22 % high).
        """
        ref = self._reference()  # dtype and device of the model

        def ts(blk: nn.Module) -> Tensor:
            kernel = getattr(blk, "kernel", None)
            val = getattr(kernel, "timescale", None)
            out = torch.as_tensor(float("nan") if val is None else val, dtype=ref.dtype, device=ref.device)
            return out.reshape(()).clone()

        return {
            "across": torch.stack([ts(b) for b in self.across]) if len(self.across) else ref.new_zeros(0),
            "within": [
                torch.stack([ts(b) for b in cast(nn.ModuleList, blks)])
                if len(cast(nn.ModuleList, blks))
                else ref.new_zeros(0)
                for blks in self.within
            ],
        }
