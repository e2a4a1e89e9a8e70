"""GPFA-SSM baseline on the headline synthetic scenario: the same GP latents, but no delays between regions.

uv run python examples/synthetic/demo_gpfa_ssm.py --out-dir outputs/synthetic/gpfa_ssm
"""

from mbrila.experiments.cli import synthetic_demo

if __name__ == "__main__":
    synthetic_demo("gpfa", __doc__, label="gpfa_ssm")
