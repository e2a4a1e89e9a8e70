"""The diagnostic figures of each protocol, as named :class:`~matplotlib.figure.Figure` objects.

The command-line demos save them as PNG files (the names are the file names); the notebooks show them inline.
"""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from mbrila import plotting
from mbrila.core import MultiRegionData
from mbrila.experiments.baselines import psth_prediction
from mbrila.experiments.cosmoothing import CosmoothingResult
from mbrila.experiments.synthetic import SyntheticRun, matched_across_latents, matched_delays


def _region0_sd(model: Any, post: Any, perm: Any | None) -> torch.Tensor:
    """Posterior standard deviations ``(trials or 1, T, n)`` of region 0's across latents (``perm``: their order)."""
    n_a = model.latent_spec.n_across
    var = post.cov[..., :n_a, :n_a].diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt().cpu()
    return var if perm is None else var[..., torch.as_tensor(perm)]


def ard_figure(model: Any, region_names: Any) -> Figure | None:
    """The ARD activity figure of an mDLAG model (None for other models)."""
    if not hasattr(model, "active_latents"):
        return None
    return plotting.plot_ard(
        model.shared_variance_fraction().cpu(),
        model.active_latents().cpu(),
        region_names,
        precisions=model.ard_precisions().cpu(),
    )


def synthetic_figure_set(run: SyntheticRun) -> dict[str, Figure]:
    """convergence, delays (truth vs fit, when the model learns delays), latents (± 2 sd), ARD (mDLAG), PSTH."""
    figs: dict[str, Figure] = {"convergence.png": plotting.plot_convergence(run.fit.score_trace)}
    if run.summary.get("delay_rmse") is not None:
        figs["delays.png"] = plotting.plot_delays(matched_delays(run), run.truth.delays, run.data.region_names)
    fitted, true = matched_across_latents(run)
    if fitted.shape[-1]:
        perm = None if run.matching is None else run.matching.perm
        sd = _region0_sd(run.model, run.posterior, perm).expand_as(fitted)
        figs["latents.png"] = plotting.plot_latents(fitted, true, title="across latents seen by region 0", sd=sd)
    ard = ard_figure(run.model, run.data.region_names)
    if ard is not None:
        figs["ard.png"] = ard
    figs["psth_heatmap.png"] = plotting.plot_psth_heatmap(
        run.data.y, run.prediction, run.data.y_dims, region_names=run.data.region_names
    )
    return figs


def cosmoothing_figure_set(res: CosmoothingResult, data: MultiRegionData) -> dict[str, Figure]:
    """For the first holdout seed of a split: PSTH heatmap (held-out neurons marked), convergence (with the
    validation trace), delays, latents (± 2 sd), the reconstruction of held-out neurons beside the training-PSTH
    baseline, and the ARD activity (mDLAG)."""
    test, train = data[res.test_idx], data[res.train_idx]
    selected = res.selected_iter if res.validation_trace else None
    figs: dict[str, Figure] = {
        "psth_heatmap.png": plotting.plot_psth_heatmap(
            test.y, res.prediction, test.y_dims, res.heldout, test.region_names
        ),
        "convergence.png": plotting.plot_convergence(
            res.fit.score_trace, validation=res.validation_trace, selected=selected
        ),
    }
    model = res.model
    if model.latent_spec.n_across and model.delay.learns_delays:
        figs["delays.png"] = plotting.plot_delays(model.delays().cpu(), None, test.region_names)
    post = model.infer(res.model_data(test))
    sd = post.cov.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()[..., : model.latent_dims[0]]
    figs["latents.png"] = plotting.plot_latents(
        post.region(0).cpu(), title=f"{test.region_names[0]} latents", sd=sd.expand_as(post.region(0)).cpu()
    )
    figs["cosmoothing.png"] = plotting.plot_cosmoothing(
        test.y, res.prediction, res.heldout, test.y_dims, test.region_names, baseline=psth_prediction(train, test)
    )
    ard = ard_figure(model, test.region_names)
    if ard is not None:
        figs["ard.png"] = ard
    return figs
