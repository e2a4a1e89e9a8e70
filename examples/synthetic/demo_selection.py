"""Model selection on the headline DLAG-SSM scenario (5 regions × 100 neurons, 2 across + 1 within latent per
region): 5-fold cross-validation of the latent counts over (n_across, n_within) ∈ {1, 2, 3} × {0, 1, 2}, scored by
held-out-neuron co-smoothing on held-out trials; the smallest model within one standard error of the best is fitted
to all trials and its delays bootstrapped (warm-started refits on resampled trials, latents matched back).

    uv run python examples/synthetic/demo_selection.py --seed 0 --workers 2 --out-dir outputs/synthetic/selection

At full size this is 45 cross-validation fits and 100 replicate fits: about an hour on a laptop's 2 cores.
``--n-trials``, ``--n-folds`` and ``--n-boot`` make it smaller.
"""

from mbrila.experiments.selection_cli import synthetic_selection_demo

if __name__ == "__main__":
    synthetic_selection_demo(__doc__)
