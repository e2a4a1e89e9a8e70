"""DLAG with the exact dense-GP E-step (the published algorithm) on the headline 2-region scenario.

100 neurons per region, 2 across latents (constant delays up to 3 bins) + 1 within latent per region, 50 trials of
200 bins. Fits ``mbrila.build_model("dlag")`` with its defaults (the exact engine) and reports delay RMSE, wall time
and memory.

    uv run python examples/synthetic/demo_dlag.py --seed 0 --out-dir outputs/synthetic/dlag
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("dlag", __doc__)
