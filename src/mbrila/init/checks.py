"""Checks of training data that is legal but makes the model ill-posed: each gives a :class:`DataWarning`.

The fit goes on in every case (constant neurons get a noise-variance floor, see
:func:`~mbrila.observations.linear.floored_variance`); the warning names the region and the neurons so that the user
can clean the data:

- a **constant** neuron (every observed value equal, e.g. a silent one) carries no information;
- an **all-zero** region carries no signal (one warning for the region, not one per neuron);
- **identical** neurons (two equal columns, in one region or across regions) make their noise variances collapse
  to the floor: a latent explains the copies exactly (a Heywood case);
- a region with **more latents than neurons** cannot tell its latents apart: some loadings are not identifiable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from mbrila.distributed import all_max, all_min, all_sum, gather_labels, is_main


class DataWarning(UserWarning):
    """The data make the model ill-posed (constant or identical neurons, an all-zero region, more latents than
    neurons); the fit still runs. Filter it with ``warnings.filterwarnings("ignore", category=DataWarning)``."""


def _observed(y: Tensor, mask: Tensor | None) -> Tensor:
    """``y`` with unobserved entries set to 0 (they may hold anything)."""
    return y if mask is None else torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))


def constant_neurons(y: Tensor, mask: Tensor | None = None) -> Tensor:
    """Bool ``(N,)``: neurons whose observed entries are all equal (or that have none), from ``y (B, T, N)``."""
    flat = y.reshape(-1, y.shape[-1])
    # Extremes over every process's trials in a data-parallel fit (mbrila.distributed).
    if mask is None:
        return (all_max(flat.amax(0)) == all_min(flat.amin(0))).cpu()
    m = mask.reshape(-1, y.shape[-1])
    inf = torch.full((), float("inf"), dtype=y.dtype, device=y.device)
    hi = all_max(torch.where(m, flat, -inf).amax(0))
    lo = all_min(torch.where(m, flat, inf).amin(0))
    return ((hi == lo) | (hi == -inf)).cpu()


def duplicate_neurons(y: Tensor, mask: Tensor | None = None, skip: Tensor | None = None) -> list[list[int]]:
    """Groups (of two or more) of neurons with identical columns of ``y (B, T, N)``, over observed entries.

    Two neurons are identical when they are observed at the same entries and hold the same values there.
    Neurons flagged in ``skip (N,)`` (e.g. constant ones, reported apart) are left out.
    """
    N = y.shape[-1]
    columns = _observed(y, mask).reshape(-1, N)
    if mask is not None:  # the same values at the same observed entries
        columns = torch.cat([columns, mask.reshape(-1, N).to(columns.dtype)])
    _, group_of = torch.unique(columns.mT, dim=0, return_inverse=True)
    # In a data-parallel fit two neurons are identical when they are so in every process's trials.
    _, group_of = torch.unique(gather_labels(group_of).mT, dim=0, return_inverse=True)
    members: dict[int, list[int]] = {}
    for n, g in enumerate(group_of.tolist()):
        if skip is None or not bool(skip[n]):
            members.setdefault(g, []).append(n)
    return sorted(g for g in members.values() if len(g) > 1)


def _region_starts(y_dims: Sequence[int]) -> list[int]:
    starts = [0]
    for n in y_dims:
        starts.append(starts[-1] + int(n))
    return starts


def check_fittable(y: Tensor, mask: Tensor | None, y_dims: Sequence[int], region_names: Sequence[str]) -> None:
    """Refuse training data that leave nothing to fit, with a ``ValueError`` saying what to do: a neuron without any
    observed entry (named by region and index: nothing would inform its loadings, offset and noise variance), or
    data in which every neuron is constant (no variance for any latent to explain)."""
    if mask is not None:
        _check_every_neuron_observed(mask, y_dims, region_names)
    if bool(constant_neurons(y, mask).all()):
        raise ValueError(
            "every neuron of the data is constant (each neuron's observed values are all equal): there is no "
            "variance for the latents to explain. Check the data pipeline (units, the neurons selected)."
        )


def _check_every_neuron_observed(mask: Tensor, y_dims: Sequence[int], region_names: Sequence[str]) -> None:
    (seen_count,) = all_sum(mask.reshape(-1, mask.shape[-1]).sum(0).to(torch.float64))
    seen = (seen_count > 0).cpu()
    if bool(seen.all()):
        return
    starts = _region_starts(y_dims)
    missing = {
        name: torch.nonzero(~seen[starts[r] : starts[r + 1]]).flatten().tolist() for r, name in enumerate(region_names)
    }
    listed = "; ".join(f"region {name!r}: neurons {idx}" for name, idx in missing.items() if idx)
    raise ValueError(
        f"some neurons are missing in every trial (masked, or NaN read as missing): {listed} (indices within the "
        "region). A fit has nothing to learn their loadings from: drop them from the training data, or include "
        "trials that observe them."
    )


def warn_ill_posed(
    y: Tensor,
    mask: Tensor | None,
    y_dims: Sequence[int],
    region_names: Sequence[str],
    latents: Sequence[tuple[int, int]] | None,
    *,
    stacklevel: int = 2,
) -> None:
    """Issue a :class:`DataWarning` for each ill-posed property of the data (module docstring).

    Parameters
    ----------
    y, mask : ``(B, T, N)`` data and its observed mask (None: all observed).
    y_dims, region_names : neurons and name of each region.
    latents : per region ``(n_across, n_within)`` latent counts, compared with its neuron count (None: not checked,
        e.g. when the model prunes the latents a region cannot support).
    stacklevel : as :func:`warnings.warn`, counted from the caller of this function.
    """
    level = stacklevel + 1
    constant = constant_neurons(y, mask)
    say = is_main()  # every process of a data-parallel fit reaches the same verdicts; rank 0 reports them

    def warn(message: str) -> None:
        if say:
            warnings.warn(message, DataWarning, stacklevel=level + 1)

    observed = _observed(y, mask)
    starts = _region_starts(y_dims)
    zero_regions = []
    for r, name in enumerate(region_names):
        sl = slice(starts[r], starts[r + 1])
        if not bool(all_max((observed[..., sl] != 0).any().to(y.dtype).reshape(1))[0] > 0):
            zero_regions.append(r)
            warn(
                f"region {name!r} is all zeros (every observed value is 0): it carries no signal and its loadings "
                "stay near zero. Check the data pipeline, or leave the region out.",
            )
            continue
        idx = torch.nonzero(constant[sl]).flatten().tolist()
        if idx:
            warn(
                f"region {name!r}: neurons {idx} (indices within the region) are constant (every observed value "
                "equal, e.g. silent): they carry no information; their noise variance is held at a small floor. "
                "Drop them before fitting.",
            )
    skip = constant.clone()
    for r in zero_regions:
        skip[starts[r] : starts[r + 1]] = True
    groups = duplicate_neurons(y, mask, skip=skip)
    if groups:

        def label(n: int) -> str:
            r = max(i for i in range(len(y_dims)) if starts[i] <= n)
            return f"{region_names[r]!r} neuron {n - starts[r]}"

        pairs = "; ".join(" = ".join(label(n) for n in g) for g in groups)
        warn(
            f"identical neurons: {pairs}. A copy adds no information and makes the copies' noise variances collapse "
            "to their floor (a latent explains them exactly); drop the copies before fitting.",
        )
    if latents is None:
        return
    for r, (name, (n_a, n_w)) in enumerate(zip(region_names, latents, strict=True)):
        n_r = int(y_dims[r])
        if n_a + n_w > n_r:
            warn(
                f"region {name!r} has {n_r} neuron{'s' if n_r != 1 else ''} but {n_a + n_w} latents ({n_a} across + "
                f"{n_w} within): more latents than neurons cannot be told apart within the region, so some loadings "
                f"are not identifiable. Use at most {n_r} latents there (fewer within latents for this region: "
                "LatentSpec(n_across, n_within=[one count per region]), or fewer across latents).",
            )
