"""Block-diagonal composition of latent blocks into one state-space prior.

The full state stacks the blocks' states. Each block's views feed chosen rows of the stacked region latents
``x = [x^1; …; x^R]`` (region r: its across latents, then its within latents); ``H`` maps the full state to ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mbrila.dynamics.block import BlockTransition


@dataclass(frozen=True)
class ComposedPrior:
    """The full prior ``x`` ← ``H s``, ``s_{t+1} = A_t s_t + w_t``, ``s_0 ~ N(0, P0)``.

    Attributes
    ----------
    A, Q : ``(D, D)`` or ``(T−1, D, D)``; P0 : ``(D, D)``; H : ``(K, D)`` with ``K = Σ_r D_r``.
    slices : state slice of each block, in order.
    """

    A: Tensor
    Q: Tensor
    P0: Tensor
    H: Tensor
    slices: tuple[slice, ...]


def _block_diag(mats: Sequence[Tensor], T: int | None) -> Tensor:
    """Block-diagonal of ``(S_i, S_i)`` or ``(T−1, S_i, S_i)`` matrices (broadcast to time-varying if any is)."""
    if T is None:
        return torch.block_diag(*mats)
    D = sum(m.shape[-1] for m in mats)
    ref = mats[0]
    out = torch.zeros(T - 1, D, D, dtype=ref.dtype, device=ref.device)
    o = 0
    for m in mats:
        s = m.shape[-1]
        out[:, o : o + s, o : o + s] = m
        o += s
    return out


def compose(blocks: Sequence[BlockTransition], view_rows: Sequence[Sequence[int]], n_x: int, T: int) -> ComposedPrior:
    """Stack blocks block-diagonally.

    Parameters
    ----------
    blocks : the blocks' transitions.
    view_rows : for each block, the row of ``x`` that each of its views feeds.
    n_x : ``K``, the length of ``x``.
    T : trial length (used when any block is time-varying).
    """
    tv = any(b.A.ndim == 3 or b.Q.ndim == 3 for b in blocks)
    steps = T if tv else None
    A = _block_diag([b.A for b in blocks], steps)
    Q = _block_diag([b.Q for b in blocks], steps)
    P0 = torch.block_diag(*[b.P0 for b in blocks])
    D = P0.shape[-1]
    H = torch.zeros(n_x, D, dtype=P0.dtype, device=P0.device)
    slices, o = [], 0
    for b, rows in zip(blocks, view_rows, strict=True):
        s = b.A.shape[-1]
        if len(rows) != b.H.shape[0]:
            raise ValueError(f"a block has {b.H.shape[0]} views but {len(rows)} target rows were given.")
        H[list(rows), o : o + s] = b.H
        slices.append(slice(o, o + s))
        o += s
    return ComposedPrior(A=A, Q=Q, P0=P0, H=H, slices=tuple(slices))
