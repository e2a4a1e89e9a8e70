"""Model selection and uncertainty: cross-validated latent counts and bootstrap intervals on delays.

``cross_validate(data, "dlag_ssm", grid=[(a, w) for a in (1, 2, 3) for w in (0, 1, 2)])`` scores every candidate by
held-out-neuron co-smoothing on held-out trials and picks the smallest model within one standard error of the
best; ``bootstrap_delays(model, data)`` refits the chosen model on resampled trials and returns percentile
intervals for its delays and timescales. Both run their fits in parallel worker processes on request.
"""

from mbrila.selection.bootstrap import BootstrapResult, Interval, bootstrap_delays, match_replicate
from mbrila.selection.cross_validation import CVResult, cross_validate, trial_folds
from mbrila.selection.factory import PresetFactory

__all__ = [
    "BootstrapResult",
    "CVResult",
    "Interval",
    "PresetFactory",
    "bootstrap_delays",
    "cross_validate",
    "match_replicate",
    "trial_folds",
]
