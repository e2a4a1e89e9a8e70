"""Initialisation of a Poisson model from its Gaussian twin fitted on square-root counts.

Square-root counts are nearly homoscedastic, so the Gaussian recipe of the preset (multi-set CCA, AMUSE, factor
analysis; for ADM also the deflation stage) gives the latents' timescales, delays and loading directions. A
Gaussian loading ``c^z_n`` on ``z = √y`` becomes a log-rate loading by the slope of ``E[√y]`` in ``η = log λ`` at
neuron n's mean rate ``λ̄_n`` (for ``y ~ Poisson(λ)``, ``dE[g(y)]/dλ = E[g(y + 1) − g(y)]``)::

    c_n = c^z_n / s_n,    s_n = λ̄_n · E_{y~Poisson(λ̄_n)}[√(y+1) − √y],    d_n = log λ̄_n − ½ ‖c_n‖²

(the offset makes ``E[λ] = λ̄_n`` under unit-variance latents). Loadings are capped at a log-rate standard
deviation of :data:`MAX_LOG_RATE_SD` so that a nearly silent neuron cannot start with explosive rates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from mbrila.core import MultiRegionData
from mbrila.distributed import all_sum
from mbrila.observations.counts import check_counts
from mbrila.observations.linear import MultiRegionLinearObservation

if TYPE_CHECKING:
    from mbrila.models.base import MultiRegionLatentModel

#: Largest starting standard deviation of a neuron's log rate driven by the latents.
MAX_LOG_RATE_SD = 2.0


def sqrt_slope(rate: Tensor) -> Tensor:
    """``λ · E_{Poisson(λ)}[√(y+1) − √y]``: the slope of ``E[√y]`` in ``log λ`` (elementwise, exact series)."""
    lam = rate.detach().cpu().double().clamp_min(1e-12).numpy()
    top = int(max(20.0, float(lam.max()) + 12.0 * float(lam.max()) ** 0.5))
    k = np.arange(top + 1, dtype=np.float64)
    pmf = stats.poisson.pmf(k[:, None], lam[None, :])  # (K, N)
    diff = (k[:, None] + 1) ** 0.5 - k[:, None] ** 0.5
    slope = lam * (pmf * diff).sum(0)
    return torch.as_tensor(slope, dtype=rate.dtype, device=rate.device)


def initialize_from_counts(
    model: MultiRegionLatentModel,
    data: MultiRegionData,
    initialize: Callable[[Any, MultiRegionData], Any],
) -> Any:
    """Initialise the Poisson ``model`` in place (see the module docstring).

    Parameters
    ----------
    model : a model with a :class:`~mbrila.observations.PoissonObservation`.
    data : training counts.
    initialize : the preset's Gaussian initialisation, called as ``initialize(twin, sqrt_data)``.

    Returns what ``initialize`` returned.
    """
    from mbrila.inference.kalman_em import KalmanEMEngine

    y, mask = model._data(data)
    # Checked before the Gaussian recipe runs on √y (which would accept a negative or a fraction silently).
    check_counts(y, mask, "data.y")
    obs = model.observation
    # The twin: the same latents, delays and kernels with a Gaussian read-out and engine.
    twin = copy.copy(model)
    twin._modules = dict(model._modules)
    twin.observation = MultiRegionLinearObservation(model.y_dims, model.latent_dims).to(y)
    twin.engine = KalmanEMEngine()
    # Unobserved entries may hold anything (NaN included): zero them, the mask keeps them out.
    y = y if mask is None else torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
    sqrt_data = MultiRegionData(y.sqrt(), data.y_dims, data.region_names, mask=mask, dtype=y.dtype, device=y.device)
    # Not under no_grad: the recipe may fit (ADM's deflation stage takes gradient steps on delays).
    out = initialize(twin, sqrt_data)
    with torch.no_grad():
        _set_loadings(obs, twin.observation.C, y, mask)
    return out


def _set_loadings(obs: Any, C_sqrt: Tensor, y: Tensor, mask: Tensor | None) -> None:
    """The log-rate loadings and offsets from the Gaussian loadings on √y (module docstring)."""
    w = torch.ones_like(y) if mask is None else mask.to(y.dtype)
    total, count = all_sum((y * w).sum((0, 1)), w.sum((0, 1)))  # every process's trials (mbrila.distributed)
    count = count.clamp_min(1.0)
    # A neuron without a spike gets half a spike's rate: a finite offset that the M-step then lowers.
    rate = (total / count).clamp_min(0.5 / count)
    C = C_sqrt / sqrt_slope(rate)[:, None]
    norm = C.norm(dim=1, keepdim=True)
    C = C * (MAX_LOG_RATE_SD / norm.clamp_min(MAX_LOG_RATE_SD))
    obs.C.copy_(C)
    obs.d.copy_(rate.log() - 0.5 * C.square().sum(1))
