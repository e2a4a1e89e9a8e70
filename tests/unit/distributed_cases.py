"""The fits that the data-parallel test runs in one process and in two (imported by the spawned workers too)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import torch

import mbrila
from mbrila import distributed
from mbrila.core import LatentSpec, MultiRegionData
from mbrila.synthetic import MultiRegionScenario

#: Seven trials: two processes hold 4 and 3 (uneven shards).
N_TRIALS = 7
T = 20
MAX_ITER = 6


def tiny_data(ragged: bool = False, seed: int = 0, missing: bool = False, counts: bool = False) -> MultiRegionData:
    data = MultiRegionScenario(
        n_trials=N_TRIALS,
        T=T,
        y_dims=(6, 5),
        n_across=1,
        n_within=1,
        timescales_across=(3.0,),
        timescales_within=3.0,
        delay_amplitude=(1.0,),
        snr=5.0,
        seed=seed,
    ).sample()[0]
    if counts:  # spike counts for the Poisson read-out
        rates = torch.exp(0.3 * data.y)
        y = torch.poisson(rates, generator=torch.Generator().manual_seed(seed))
        return MultiRegionData(y, data.y_dims, data.region_names)
    if missing:  # 10 % of the entries missing at random: per-trial covariances, masked read-out updates
        mask = torch.rand(data.y.shape, generator=torch.Generator().manual_seed(seed)) > 0.1
        return MultiRegionData(data.y, data.y_dims, data.region_names, mask=mask)
    if not ragged:
        return data
    # Trials of 20, 14 and 17 bins: the first shard (4 trials) has no 17-bin trial, the second (3) no 14-bin one.
    lengths = [20, 14, 20, 20, 17, 20, 17]
    return MultiRegionData(data.y, data.y_dims, data.region_names, lengths=lengths)


#: (label, preset, build_model keywords, trials: "full", "ragged", "missing" entries or "counts")
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("dlag_ssm", "dlag_ssm", {}, "full"),
    ("dlag_ssm-ragged", "dlag_ssm", {}, "ragged"),
    ("dlag_ssm-missing", "dlag_ssm", {}, "missing"),
    # ADM's reductions under its over-relaxed loop: with SQUAREM (its default) the two processes' sums, equal to
    # round-off, end 1.4e-10 apart in the delay weights after the jumps' α² amplification, past the 1e-10 asked
    # here. SQUAREM's data-parallel path is compared at 1e-10 by the DLAG-SSM cases.
    ("adm", "adm", {"engine_defaults": {"accelerate": None}}, "full"),
    ("gpfa", "gpfa", {}, "full"),
    ("gpfa-ragged", "gpfa", {}, "ragged"),
    ("lds", "lds", {}, "full"),
    ("dlag_ssm-poisson", "dlag_ssm", {"observation": "poisson"}, "counts"),
    ("dlag_exact", "dlag", {}, "full"),
    ("dlag_exact-ragged", "dlag", {}, "ragged"),
    ("dlag_exact-missing", "dlag", {}, "missing"),
    ("mdlag_time", "mdlag", {}, "full"),
    ("mdlag_freq", "mdlag_freq", {}, "full"),
    ("mdlag_freq-ragged", "mdlag_freq", {}, "ragged"),
    ("mdlag_ssm", "mdlag_ssm", {}, "full"),
]


def fit_case(label: str, **fit_kwargs: Any) -> dict[str, Any]:
    """Fit one case (on this process's shard in a data-parallel run): its parameters and score trace."""
    _, preset, kw, kind = next(c for c in CASES if c[0] == label)
    data = tiny_data(ragged=kind == "ragged", missing=kind == "missing", counts=kind == "counts")
    spec = LatentSpec(2, 0) if preset.startswith("mdlag") else LatentSpec(1, 1)
    model = mbrila.build_model(preset, latent_spec=spec, y_dims=data.y_dims, T=data.T, dtype=torch.float64, **kw)
    result = model.fit(distributed.shard(data), max_iter=MAX_ITER, progress=False, **fit_kwargs)
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"params": params, "trace": list(result.score_trace), "n_iter": result.n_iter}


class _Stop(Exception):
    pass


def interrupted_and_resumed(label: str, ckpt: str) -> dict[str, Any]:
    """Fit ``label`` with a checkpoint every 2 iterations, stop it after the 4th E-step (every process at once),
    then resume from the file rank 0 wrote: its parameters and trace."""

    def stop(k: int, score: float) -> None:
        if k == 4:
            raise _Stop

    with contextlib.suppress(_Stop):
        fit_case(label, checkpoint=ckpt, checkpoint_every=2, callback=stop)
    torch.distributed.barrier()  # the other processes read what rank 0 wrote
    return fit_case(label, resume=ckpt)


def worker(rank: int, world: int, port: int, out: str) -> None:
    """One process of the data-parallel run: every case on its shard; rank 0 writes the results.

    It joins the group as a ``torchrun`` worker does, from the environment, through
    :func:`mbrila.distributed.init_process_group`.
    """
    torch.set_num_threads(1)
    env = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    os.environ.update({k: str(v) for k, v in env.items()})
    device = distributed.init_process_group("cpu")
    assert device == torch.device("cpu") and torch.distributed.get_backend() == "gloo"
    assert distributed.world_size() == world and distributed.rank() == rank
    try:
        results: dict[str, Any] = {}
        for label, *_ in CASES:
            t0 = time.perf_counter()
            results[label] = fit_case(label)
            results[label]["seconds"] = time.perf_counter() - t0
        results["traffic"] = distributed.traffic().bytes
        results["dlag_ssm-resumed"] = interrupted_and_resumed("dlag_ssm", str(Path(out).parent / "run.ckpt"))
        with distributed.local():  # each process fits all the trials on its own (a CV fold, a replicate)
            results["dlag_ssm-local"] = fit_case("dlag_ssm")
        if rank == 0:
            tmp = out + ".tmp"
            torch.save(results, tmp)
            os.replace(tmp, out)
    finally:
        torch.distributed.destroy_process_group()
