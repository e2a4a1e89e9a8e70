"""Cost of an EM iteration of Poisson DLAG-SSM (Laplace EM) against Gaussian DLAG-SSM on square-root counts.

    uv run python benchmarks/poisson.py            # writes benchmarks/results/poisson.json

Both models are built at their defaults for the same generated counts (the headline DLAG scenario with Poisson
observations: 50 trials × T = 200, 5 regions × 100 neurons, 2 across + 1 within latent per region), initialised,
and fitted for a few iterations in this one process; the rows give seconds per iteration of each EM stage (the
E-step's Newton steps included) and their ratio. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, max_rss_mb, write_json

import mbrila
from mbrila.experiments.synthetic import _per_iteration
from mbrila.synthetic import headline_scenario


def _fit(model: mbrila.MultiRegionLatentModel, data: mbrila.MultiRegionData, iters: int) -> dict:
    fit = model.fit(data, max_iter=iters, progress=False)
    per = _per_iteration(fit)
    return {"n_iter": fit.n_iter, "per_iter_s": per, "iteration_s": sum(per.values()), "init_s": fit.init_time_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=4, help="EM iterations timed per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "poisson.json")
    args = ap.parse_args()
    scen = headline_scenario("dlag", seed=args.seed, observation="poisson")
    data, _ = scen.sample()
    sqrt = mbrila.MultiRegionData(data.y.sqrt(), data.y_dims, data.region_names)
    kw = {"latent_spec": scen.latent_spec, "y_dims": data.y_dims, "T": data.T}
    gaussian = _fit(mbrila.build_model("dlag", engine="kalman", **kw), sqrt, args.iters)
    poisson = _fit(mbrila.build_model("dlag", engine="kalman", observation="poisson", **kw), data, args.iters)
    rows = {
        "shape": {"trials": data.n_trials, "T": data.T, "y_dims": list(data.y_dims), "latents": "2 across + 1 within"},
        "mean_rate": float(data.y.mean()),
        "gaussian_sqrt": gaussian,
        "poisson": poisson,
        "iteration_ratio": poisson["iteration_s"] / gaussian["iteration_s"],
        "peak_rss_mb": max_rss_mb(),
        "torch_threads": torch.get_num_threads(),
    }
    write_json(args.out, {"machine": machine_info(), "results": rows})
    print(rows)


if __name__ == "__main__":
    main()
