"""GPFA-SSM baseline on the headline synthetic scenario: the same GP latents, but no delays between regions.

uv run python examples/synthetic/demo_gpfa_ssm.py --out-dir outputs/synthetic/gpfa_ssm
"""

from mbrila.experiments.cli import run_synthetic_demo

if __name__ == "__main__":
    run_synthetic_demo("gpfa_ssm", __doc__)
