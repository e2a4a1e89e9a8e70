"""The gradient M-step's parts: the Adam kernel, the batched lift objective, and what a fit imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import mbrila
from mbrila.core import LatentSpec
from mbrila.dynamics import expected_log_prior
from mbrila.inference.adam import Adam
from mbrila.inference.kalman import kalman_smoother
from mbrila.inference.moments import StateMoments
from tests.unit.test_models import small_data

F64 = torch.float64


def test_adam_matches_torch_optim_adam_exactly():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 4, generator=g, dtype=F64)
    a0, b0 = torch.randn(3, 4, generator=g, dtype=F64), torch.randn(2, generator=g, dtype=F64)
    runs = []
    for make in (lambda ps: Adam(ps, lr=0.05), lambda ps: torch.optim.Adam(ps, lr=0.05)):
        a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = make([a, b])
        for k in range(25):
            opt.zero_grad()
            # b gets no gradient on odd steps: its state must not advance then.
            loss = ((a - target) ** 4).sum() + (0 if k % 2 else (b.exp() - 1).square().sum())
            loss.backward()
            opt.step()
            if k == 10:
                opt.param_groups[0]["lr"] *= 0.5  # what the guarded M-step does after a failed block
        runs.append((a.detach(), b.detach()))
    for x, y in zip(*runs, strict=True):
        assert torch.equal(x, y)


def _moments(model, data):
    y, mask = model._data(data)
    with torch.no_grad():
        prior = model.prior(data.T)
        post = kalman_smoother(model.lgssm(data.T, prior), y, mask)
    return prior, StateMoments.from_posterior(post)


@pytest.mark.parametrize("name", ["dlag_ssm", "adm", "gpfa"])
def test_batched_lift_objective_equals_the_per_block_sum(name):
    # The batched evaluation (one lift for every latent of a shape) against each block's own transition.
    data, _ = small_data(seed=3, n_trials=6, T=30)
    model = mbrila.build_model(name, latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.dynamics_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))  # away from the symmetric defaults
        # Loadings that let the data speak (the unfitted model's posterior would be its prior, with zero gradient).
        C = model.observation.C
        C.copy_(torch.randn(C.shape, generator=gen, dtype=C.dtype))
    prior, mom = _moments(model, data)
    params = model.dynamics_parameters()
    batched = model.expected_log_prior(mom, prior.slices, data.T)
    g_batched = torch.autograd.grad(batched, params, allow_unused=True)
    reference = torch.zeros((), dtype=F64)
    for (blk, _, k), sl in zip(model.blocks(), prior.slices, strict=True):
        tr = blk.transition(model._latent_delays(k, data.T))
        reference = reference + expected_log_prior(tr, mom.block(sl, sum_over_time=tr.A.ndim == 2))
    g_ref = torch.autograd.grad(reference, params, allow_unused=True)
    torch.testing.assert_close(batched, reference, rtol=1e-12, atol=0)
    # Entries that are zero up to round-off (e.g. a delay that barely moves the objective) are compared on the
    # scale of the whole gradient.
    scale = max(float(b.abs().max()) for b in g_ref if b is not None)
    assert scale > 1e-3
    for a, b in zip(g_batched, g_ref, strict=True):
        if b is None:
            assert a is None or bool((a == 0).all())
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("name", ["dlag_ssm", "dlag"])
def test_a_fit_does_not_import_the_compiler(name):
    # torch.optim optimisers import torch._dynamo when built, and autograd.grad with a tensor grad_outputs imports
    # sympy: seconds of a fresh process each, more than a small fit.
    code = (
        "import sys, mbrila\n"
        "from mbrila.core import LatentSpec\n"
        "from tests.unit.test_models import small_data\n"
        "data, _ = small_data(seed=0, n_trials=4, T=20)\n"
        f"m = mbrila.build_model({name!r}, latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)\n"
        "m.fit(data, max_iter=2, progress=False)\n"
        "print(sorted(k for k in ('torch._dynamo', 'sympy') if k in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
