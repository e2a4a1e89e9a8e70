"""Rank-1 deflation: fit the across latents one at a time before the joint fit (ADM's initialisation).

After the multi-region initialisation (constant delays, timescales, loadings), for ``k = 0, 1, …``::

    residual ← y − d − Σ_{j<k} C_{:,j} E[x_j | y]          (latents already fitted are removed)
    fit a one-latent model (latent k's kernel, delay trajectories and loading column, diagonal noise) to the
    residual by Kalman EM, starting from the current values, and copy them back.

Fitting a single delayed latent at a time keeps two latents from merging into one and lets each delay
trajectory leave its constant starting value before the latents compete in the joint fit.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from mbrila.core import MultiRegionData
from mbrila.inference.em import quiet_fits
from mbrila.init.checks import DataWarning

if TYPE_CHECKING:
    from mbrila.models.base import MultiRegionLatentModel


@dataclass
class Deflation:
    """Settings of the deflation stage.

    Parameters
    ----------
    max_iter : EM iterations of each one-latent fit.
    tol : their convergence tolerance.
    """

    max_iter: int = 40
    tol: float = 1e-6


def _across_columns(model: MultiRegionLatentModel, k: int) -> list[tuple[slice, int]]:
    """For each region: its neurons and the column of ``observation.C`` holding across latent ``k``."""
    return [(neurons, lat.start + k) for neurons, lat in model.observation.region_blocks()]


def deflate_across(
    model: MultiRegionLatentModel,
    data: MultiRegionData,
    build_single: Any,
    settings: Deflation | None = None,
) -> None:
    """Run the deflation stage (module docstring) on ``model`` in place.

    Parameters
    ----------
    model : an initialised model with across latents.
    data : training data.
    build_single : ``build_single(kernel) -> model`` builds the one-across-latent, no-within-latent model of the
        same kind (same delay parametrisation) around a copy of latent k's kernel.
    settings : :class:`Deflation` (defaults when None).
    """
    settings = settings or Deflation()
    y, mask = model._data(data)
    obs = model.observation
    T = data.T

    def observed_only(x: torch.Tensor) -> torch.Tensor:
        # Missing entries stay exactly zero, so they never leak into the next one-latent fit.
        return x if mask is None else torch.where(mask, x, torch.zeros_like(x))

    with torch.no_grad():
        resid = observed_only(y - obs.d)
    for k, blk in enumerate(model.across):
        kernel = copy.deepcopy(blk.kernel)
        single = build_single(kernel)
        cols = _across_columns(model, k)
        with torch.no_grad():
            single.delay.set_latent_delays(0, model.delay.delays(T)[:, :, k])
            single.observation.C.zero_()
            for (neurons, col), (_, col1) in zip(cols, _across_columns(single, 0), strict=True):
                single.observation.C[neurons, col1] = obs.C[neurons, col]
            single.observation.d.zero_()
            single.observation.R.copy_(obs.R)
        part = data._replace(resid, mask, data.lengths)
        with quiet_fits(), warnings.catch_warnings():  # an initialisation step: the one-latent fits' ends are not news
            # The model's own fit has warned about its data already; the residuals would repeat it for every latent.
            warnings.simplefilter("ignore", DataWarning)
            single.fit(part, max_iter=settings.max_iter, tol=settings.tol, progress=False, init=False)
        with torch.no_grad():
            blk.kernel.load_state_dict(single.across[0].kernel.state_dict())  # type: ignore[union-attr]
            model.delay.set_latent_delays(k, single.delay.delays(T)[:, :, 0])  # type: ignore[operator]
            for (neurons, col), (_, col1) in zip(cols, _across_columns(single, 0), strict=True):
                obs.C[neurons, col] = single.observation.C[neurons, col1]
            resid = observed_only(resid - (single.predict(part) - single.observation.d))
