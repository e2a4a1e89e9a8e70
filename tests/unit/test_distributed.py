"""Data-parallel EM: two gloo processes, each holding a shard of the trials, end with the one-process fit."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import socket
import time

import pytest
import torch

from mbrila import distributed
from tests.unit import distributed_cases
from tests.unit.distributed_cases import CASES, fit_case, tiny_data

#: Parameters (all O(1) here) to 1e-10 absolute; scores to 1e-10 relative (they are sums of ~10² terms).
TOL = 1e-10


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    out = str(tmp / "results.pt")
    ctx = mp.get_context("spawn")
    t0 = time.perf_counter()
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = [ctx.Process(target=distributed_cases.worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    elapsed = time.perf_counter() - t0
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert codes == [0, 0], f"a worker failed: exit codes {codes}"
    return torch.load(out, weights_only=False), elapsed


def test_the_two_processes_finish_within_a_minute(two_process_results):
    _, elapsed = two_process_results
    # The spawn, rendezvous and every case of CASES (not a speed claim: a guard on the suite's time).
    assert elapsed < 60, f"the 2-process run took {elapsed:.1f} s"


@pytest.mark.parametrize("label", [c[0] for c in CASES] + ["dlag_ssm-resumed", "dlag_ssm-local"])
def test_a_two_process_fit_equals_the_one_process_fit(two_process_results, label):
    # "dlag_ssm-resumed": interrupted after 4 iterations, resumed by both processes from rank 0's checkpoint.
    # "dlag_ssm-local": every trial fitted by each process inside distributed.local() (nothing summed twice).
    results, _ = two_process_results
    one = fit_case(label.removesuffix("-resumed").removesuffix("-local"))
    two = results[label]
    assert two["n_iter"] == one["n_iter"]
    t1, t2 = (torch.tensor(t, dtype=torch.float64) for t in (one["trace"], two["trace"]))
    assert t1.shape == t2.shape
    assert float(((t1 - t2).abs() / t1.abs().clamp_min(1.0)).max()) <= TOL
    assert one["params"].keys() == two["params"].keys()
    for key, p1 in one["params"].items():
        p2 = two["params"][key]
        assert p1.shape == p2.shape, key
        if p1.is_floating_point() or p1.is_complex():
            finite = torch.isfinite(p1)
            assert torch.equal(finite, torch.isfinite(p2)), key
            diff = float((p1[finite] - p2[finite]).abs().max()) if bool(finite.any()) else 0.0
            assert diff <= TOL, f"{key}: {diff:.3g}"
        else:
            assert torch.equal(p1, p2), key


def test_the_two_processes_all_reduce_something(two_process_results):
    results, _ = two_process_results
    assert results["traffic"] > 0  # the sums really crossed processes (a fit that ignored the group would not)


def test_a_shard_of_one_process_is_the_whole_data():
    data = tiny_data()
    assert distributed.shard(data) is data
    assert not distributed.active()
    assert distributed.all_sum(torch.ones(2))[0].tolist() == [1.0, 1.0]


def test_shard_bounds_cover_every_trial_once_and_differ_by_at_most_one():
    for n, w in [(7, 2), (10, 3), (4, 4), (100, 7)]:
        bounds = distributed.shard_bounds(n, w)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        sizes = [b - a for a, b in bounds]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    data = tiny_data(ragged=True)
    parts = [distributed.shard(data, r, 2) for r in range(2)]
    assert [p.n_trials for p in parts] == [4, 3]
    assert torch.equal(torch.cat([p.y for p in parts]), data.y)
    assert torch.equal(torch.cat([p.lengths for p in parts]), data.lengths)


def test_bad_shards_are_refused_with_a_message():
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        distributed.shard_bounds(2, 3)
    with pytest.raises(ValueError, match="rank must lie in"):
        distributed.shard(tiny_data(), 2, 2)
