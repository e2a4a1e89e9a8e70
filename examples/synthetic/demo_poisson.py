"""Spike counts: Poisson DLAG-SSM and Gaussian DLAG-SSM on square-root counts, fitted to the same generated counts
(the headline scenario's 5 regions × 100 neurons with Poisson observations, a few spikes per bin at most). Reports
both delay RMSEs (bins) and both co-smoothing bits per spike on 25 test trials, beside the training-PSTH baseline.

    uv run python examples/synthetic/demo_poisson.py --seed 0 --out-dir outputs/synthetic/poisson
"""

from mbrila.experiments.cli import count_demo

if __name__ == "__main__":
    count_demo(__doc__)
