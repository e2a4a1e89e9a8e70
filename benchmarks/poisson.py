"""Cost of an EM iteration of Poisson DLAG-SSM (Laplace EM) against Gaussian DLAG-SSM on square-root counts.

    uv run python benchmarks/poisson.py            # writes benchmarks/results/poisson.json

Both models are built at their defaults for the same generated counts (the headline DLAG scenario with Poisson
observations: 50 trials × T = 200, 5 regions × 100 neurons, 2 across + 1 within latent per region), initialised,
and fitted for a few iterations in this one process; the rows give seconds per iteration of each EM stage (the
E-step's Newton steps included) and their ratio. A second section times one Newton step of the Laplace E-step
both ways on the fitted Poisson model (pseudo-observations at its posterior mode): the banded Cholesky of the path's
precision against the Kalman filter and smoothed means, with the largest difference of their results, and the final
covariance pass (Kalman filter and RTS smoother). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, max_rss_mb, write_json

import mbrila
from mbrila.experiments.synthetic import _per_iteration
from mbrila.inference.banded import BandedPrior
from mbrila.inference.kalman import sequential
from mbrila.inference.kalman.selected import filter_selected
from mbrila.inference.laplace import ReadoutSystem, laplace_smoother
from mbrila.observations.poisson import loglik_terms
from mbrila.synthetic import headline_scenario


def _fit(model: mbrila.MultiRegionLatentModel, data: mbrila.MultiRegionData, iters: int) -> dict:
    fit = model.fit(data, max_iter=iters, progress=False)
    per = _per_iteration(fit)
    return {"n_iter": fit.n_iter, "per_iter_s": per, "iteration_s": sum(per.values()), "init_s": fit.init_time_s}


def _best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


@torch.no_grad()
def _newton_step_costs(model: mbrila.MultiRegionLatentModel, data: mbrila.MultiRegionData) -> dict:
    """Seconds of one Newton step's solve, banded and Kalman, and of the final covariance pass (best of 3)."""
    T = data.T
    params = model.lgssm(T, model.prior(T))
    mode = laplace_smoother(params, data.y, link=model.observation.link).mean
    readout = ReadoutSystem(params.C)
    idx, u = readout.idx, readout.drive(mode)
    _, g, W = loglik_terms(data.y, u + params.d, model.observation.link)
    Ja, ha = readout.pseudo_observations(W, g, u)
    prior = BandedPrior.build(params.A, params.Q, params.P0, idx, T)
    assert prior is not None
    args = (params.A, params.Q, params.m0, params.P0, idx, Ja, ha)
    banded_s, banded = _best_of(lambda: prior.newton_target(Ja, ha))
    filter_s, filt = _best_of(lambda: filter_selected(*args))
    means_s, means = _best_of(lambda: sequential.smooth_means(params.A, filt[0], filt[1], filt[3], filt[4]))
    smooth_s, _ = _best_of(lambda: sequential.smooth(params.A, filt[0], filt[1], filt[3], filt[4]))
    return {
        "banded_newton_solve_s": banded_s,
        "kalman_newton_solve_s": filter_s + means_s,
        "kalman_filter_s": filter_s,
        "kalman_smoothed_means_s": means_s,
        "kalman_rts_covariances_s": smooth_s,
        "final_covariance_pass_s": filter_s + smooth_s,
        "newton_solve_ratio": (filter_s + means_s) / banded_s,
        "max_abs_difference": float((banded - means).abs().max()),
        "state_dim": params.state_dim,
    }


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
    poisson_model = mbrila.build_model("dlag", engine="kalman", observation="poisson", **kw)
    poisson = _fit(poisson_model, data, args.iters)
    peak_fits = max_rss_mb()  # before the step timings below, which hold extra copies of the covariances
    rows = {
        "shape": {"trials": data.n_trials, "T": data.T, "y_dims": list(data.y_dims), "latents": "2 across + 1 within"},
        "mean_rate": float(data.y.mean()),
        "gaussian_sqrt": gaussian,
        "poisson": poisson,
        "iteration_ratio": poisson["iteration_s"] / gaussian["iteration_s"],
        "newton_step": _newton_step_costs(poisson_model, data),
        "peak_rss_mb": peak_fits,
        "torch_threads": torch.get_num_threads(),
    }
    write_json(args.out, {"machine": machine_info(), "results": rows})
    print(rows)


if __name__ == "__main__":
    main()
