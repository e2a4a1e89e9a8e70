"""Compare V1/V2 co-smoothing runs: a table (markdown + JSON) and a bar chart, baselines included.

    uv run python examples/v1v2/compare_v1v2_runs.py --runs "outputs/v1v2/*" --out-dir outputs/v1v2/comparison
    uv run python examples/v1v2/compare_v1v2_runs.py --label DLAG --runs outputs/v1v2/dlag \
        --label mDLAG-freq --runs outputs/v1v2/mdlag_freq --out-dir outputs/v1v2/comparison
"""

from mbrila.experiments.cli import compare_runs

if __name__ == "__main__":
    compare_runs(description=__doc__)
