"""DLAG-SSM on the headline synthetic scenario: 5 regions × 100 neurons, 2 across + 1 within latent per region,
constant delays up to 3 bins. Fits ``mbrila.build_model("dlag_ssm")`` (DLAG with ``engine="kalman"``) with its
defaults and reports delay RMSE (bins), reconstruction RMSE, iterations, wall time and peak memory.

    uv run python examples/synthetic/demo_dlag_ssm.py --seed 0 --out-dir outputs/synthetic/dlag_ssm
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("dlag_ssm", __doc__)
