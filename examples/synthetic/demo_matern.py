"""DLAG-SSM with Matérn-5/2 kernels on data drawn from Matérn-5/2 GPs (headline timescales and delays).

Within latents use the kernel's exact state-space form (no approximation); delayed across latents use the AR(P)
lift of the same covariance.

    uv run python examples/synthetic/demo_matern.py --out-dir outputs/synthetic/matern
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("matern", __doc__)
