"""How many latents a model has: shared across regions, and private to each region."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


def _as_count(value: object, name: str) -> int:
    """``value`` as a non-negative int (an int, a numpy integer or a whole float), else a ``ValueError`` naming
    ``name``."""
    if hasattr(value, "tolist") and not isinstance(value, numbers.Real):  # a 0-d numpy array or torch tensor
        value = value.tolist()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a non-negative int; got {value!r} ({type(value).__name__}).")
    if isinstance(value, numbers.Integral):
        n = int(value)
    else:
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name} must be a non-negative int; got {value!r}.")
        n = int(f)
    if n < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value!r}.")
    return n


@dataclass(frozen=True)
class LatentSpec:
    """Latent counts.

    Parameters
    ----------
    n_across : latents shared by all regions (each seen by every region, possibly delayed).
    n_within : latents private to each region: one int for every region, or one count per region (a tuple, list
        or 1-d array; stored as a tuple).

    Region ``r`` sees ``n_across + n_within[r]`` latents; the model has ``n_across + Σ_r n_within[r]``.
    """

    n_across: int
    n_within: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        # Convert first, then check: a list, a 1-d array or numpy ints are accepted and stored as plain ints.
        object.__setattr__(self, "n_across", _as_count(self.n_across, "n_across"))
        within: object = self.n_within
        if hasattr(within, "tolist"):  # a numpy array or scalar, a torch tensor
            within = within.tolist()
        if isinstance(within, list | tuple):
            if not within:
                raise ValueError("n_within must be a non-negative int or one count per region; got an empty sequence.")
            object.__setattr__(self, "n_within", tuple(_as_count(w, f"n_within[{r}]") for r, w in enumerate(within)))
        elif isinstance(within, numbers.Real) and not isinstance(within, bool):
            object.__setattr__(self, "n_within", _as_count(within, "n_within"))
        else:
            raise ValueError(
                f"n_within must be a non-negative int or one count per region; got {within!r} ({type(within).__name__})."
            )

    def for_regions(self, n_regions: int) -> LatentSpec:
        """This spec with ``n_within`` as a tuple of ``n_regions`` counts (an int is broadcast)."""
        if isinstance(n_regions, bool) or not isinstance(n_regions, int) or n_regions < 1:
            raise ValueError(f"a model needs at least one region; got {n_regions!r} regions (is y_dims empty?).")
        if isinstance(self.n_within, tuple):
            if len(self.n_within) != n_regions:
                raise ValueError(f"n_within has {len(self.n_within)} counts but the data has {n_regions} regions.")
            within = self.n_within
        else:
            within = (int(self.n_within),) * n_regions
        spec = LatentSpec(int(self.n_across), within)
        if spec.n_across + sum(within) == 0:
            raise ValueError("the model needs at least one latent: n_across and n_within are all 0.")
        return spec

    def n_within_for(self, r: int) -> int:
        return int(self.n_within[r]) if isinstance(self.n_within, tuple) else int(self.n_within)

    def dims_per_region(self, n_regions: int) -> tuple[int, ...]:
        """Latents seen by each region: ``n_across + n_within[r]``."""
        spec = self.for_regions(n_regions)
        return tuple(spec.n_across + spec.n_within_for(r) for r in range(n_regions))

    def total(self, n_regions: int) -> int:
        """``n_across + Σ_r n_within[r]``."""
        spec = self.for_regions(n_regions)
        return spec.n_across + sum(spec.n_within_for(r) for r in range(n_regions))
