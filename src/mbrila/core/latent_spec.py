"""How many latents a model has: shared across regions, and private to each region."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LatentSpec:
    """Latent counts.

    Parameters
    ----------
    n_across : latents shared by all regions (each seen by every region, possibly delayed).
    n_within : latents private to each region: one int for every region, or a tuple with one count per region.

    Region ``r`` sees ``n_across + n_within[r]`` latents; the model has ``n_across + Σ_r n_within[r]``.
    """

    n_across: int
    n_within: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        if int(self.n_across) != self.n_across or self.n_across < 0:
            raise ValueError(f"n_across must be a non-negative int; got {self.n_across!r}.")
        within = self.n_within if isinstance(self.n_within, tuple) else (self.n_within,)
        if any(int(w) != w or w < 0 for w in within):
            raise ValueError(f"n_within must be non-negative ints; got {self.n_within!r}.")
        if isinstance(self.n_within, list):
            object.__setattr__(self, "n_within", tuple(self.n_within))

    def for_regions(self, n_regions: int) -> LatentSpec:
        """This spec with ``n_within`` as a tuple of ``n_regions`` counts (an int is broadcast)."""
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
