"""What a fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class FitResult:
    """Summary of one call to ``fit``.

    Attributes
    ----------
    n_iter : parameter updates made (EM iterations); the model is left at ``θ_{n_iter}``.
    converged : whether the relative change of the score fell below ``tol``.
    score_trace : ``n_iter + 1`` scores, ``log p(y_train | θ_k)`` for ``k = 0 … n_iter`` (``θ_0``: the
        parameters the EM loop started from); a convergence diagnostic, not a cross-model score.
    wall_time_s : total wall time, initialisation included.
    init_time_s : wall time of the initialisation stage.
    timings : wall time per stage summed over iterations (``e_step``, ``m_step``, ``grad_steps``).
    stop_reason : ``"converged"``, ``"max_iter"`` (stopped at the cap without converging: a log warning says so
        too), ``"callback"`` (the callback asked to stop) or ``"resumed a finished fit"``.
    """

    n_iter: int
    converged: bool
    score_trace: list[float]
    wall_time_s: float
    init_time_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    stop_reason: str = "converged"

    def __repr__(self) -> str:
        # The score trace can hold thousands of numbers: show its end points, not all of it.
        trace = self.score_trace
        scores = f"{trace[0]:.8g} → {trace[-1]:.8g}" if trace else "none"
        return (
            f"FitResult(n_iter={self.n_iter}, converged={self.converged}, stop_reason={self.stop_reason!r}, "
            f"score {scores}, wall_time_s={self.wall_time_s:.3g})"
        )


@dataclass
class Posterior:
    """Posterior over the region latents ``x`` given data.

    Attributes
    ----------
    mean : ``(trials, T, K)`` posterior means of the stacked region latents (region r: its across latents as
        seen from r, then its within latents; ``K = Σ_r D_r``).
    cov : ``(trials or 1, T, K, K)`` posterior covariances (a leading 1 when shared by all trials).
    latent_dims : ``D_r`` per region, to split ``mean`` by region.
    log_likelihood : ``(trials,)`` log p(y) under the model.
    """

    mean: Tensor
    cov: Tensor
    latent_dims: tuple[int, ...]
    log_likelihood: Tensor

    def region(self, r: int) -> Tensor:
        """Posterior means ``(trials, T, D_r)`` of region ``r``'s latents."""
        start = sum(self.latent_dims[:r])
        return self.mean[..., start : start + self.latent_dims[r]]
