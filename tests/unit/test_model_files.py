"""Model files and fit checkpoints: plain data only, refused clearly when tampered with, resumable exactly."""

from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
import torch

import mbrila
from mbrila.core import LatentSpec
from mbrila.kernels import Matern32Kernel, RBFKernel
from mbrila.models import serialization
from mbrila.synthetic import MultiRegionScenario

SCENARIO = dict(
    n_trials=8,
    T=20,
    y_dims=(6, 5),
    n_across=1,
    n_within=1,
    timescales_across=(3.0,),
    timescales_within=3.0,
    delay_amplitude=(1.0,),
    snr=5.0,
)


def tiny_data(seed: int = 0):
    return MultiRegionScenario(**SCENARIO, seed=seed).sample()[0]


def tiny_counts(seed: int = 0):
    data = tiny_data(seed)
    rates = torch.exp(0.3 * data.y)
    counts = torch.poisson(rates, generator=torch.Generator().manual_seed(seed))
    return mbrila.MultiRegionData.from_regions({"A": counts[..., :6], "B": counts[..., 6:]})


class WidthKernel(RBFKernel):
    """A user kernel with a structural constructor argument that is not a parameter (kept by get_config)."""

    def __init__(self, scale: float) -> None:
        super().__init__(timescale=4.0)
        self.scale = float(scale)

    def cov(self, tau):
        return super().cov(tau / self.scale)


CASES = [
    ("gpfa", {}),
    ("dlag", {}),
    ("dlag_ssm", {}),
    ("adm", {}),
    ("lds", {}),
    ("mdlag", {}),
    ("mdlag_freq", {}),
    ("mdlag_ssm", {}),
    ("dlag_ssm", {"observation": "poisson"}),
    ("lds", {"observation": "poisson", "link": "softplus"}),
    ("dlag_ssm", {"kernel_factory_within": Matern32Kernel}),
    ("gpfa", {"kernel_factory_across": lambda: WidthKernel(2.0)}),
]


def build(name, kw, data):
    spec = LatentSpec(2, 0) if name.startswith("mdlag") else LatentSpec(1, 1)
    return mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=data.T, **kw)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_round_trip_gives_identical_predictions_and_reads_without_pickle(tmp_path, name, kw):
    data = tiny_counts() if kw.get("observation") == "poisson" else tiny_data()
    model = build(name, kw, data)
    model.fit(data, max_iter=3, progress=False)
    path = tmp_path / "m.pt"
    model.save(path)
    payload = torch.load(path, weights_only=True)  # plain data: the safe unpickler reads it
    assert payload["format_version"] == serialization.FORMAT_VERSION
    assert all(isinstance(v, torch.Tensor) for v in payload["state"].values())
    again = mbrila.load(path)
    assert type(again) is type(model) and type(again.engine) is type(model.engine)
    assert again.engine == model.engine
    keep = torch.arange(data.N) % 3 != 0
    assert torch.equal(model.predict(data, observed=keep), again.predict(data, observed=keep))
    assert torch.equal(model.delays().nan_to_num(-99.0), again.delays().nan_to_num(-99.0))
    assert [type(b.kernel) for b in again.across if hasattr(b, "kernel")] == [
        type(b.kernel) for b in model.across if hasattr(b, "kernel")
    ]


def _fitted(tmp_path):
    data = tiny_data()
    model = build("dlag_ssm", {}, data)
    model.fit(data, max_iter=2, progress=False)
    path = tmp_path / "m.pt"
    model.save(path)
    return model, path


class _RunsCode:
    """An object whose unpickling would call ``open(marker, "w")``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_whose_pickle_would_run_code_is_refused_and_nothing_runs(tmp_path):
    _, path = _fitted(tmp_path)
    marker = tmp_path / "pwned"
    payload = torch.load(path, weights_only=True)
    payload["config"] = _RunsCode(str(marker))
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    with pytest.raises(ValueError, match=r"refused.*pickled Python objects"):
        mbrila.load(evil)
    assert not marker.exists()
    # A plain pickle (not a torch zip file) that would run code: refused too, nothing run.
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_RunsCode(str(marker))))
    with pytest.raises(ValueError, match=str(raw.name)):
        mbrila.load(raw)
    assert not marker.exists()


def test_truncated_text_and_corrupt_files_get_clear_errors(tmp_path):
    _, path = _fitted(tmp_path)
    data = path.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "text.pt": b"hello, this is not a model\n" * 20,
        "empty.pt": b"",
        "zeros.pt": bytes(len(data)),
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}: .*(not a readable|refused|not an mbrila)"):
            mbrila.load(bad)
    with pytest.raises(ValueError, match="no such model file"):
        mbrila.load(tmp_path / "missing.pt")
    # A zip whose pickle is damaged in the middle.
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf) as z:
        names = z.namelist()
        members = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    members[pkl] = members[pkl][:10] + b"\x00garbage\x00" + members[pkl][20:]
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(damaged, "w") as z:
        for n, content in members.items():
            z.writestr(n, content)
    with pytest.raises(ValueError, match=r"damaged\.pt"):
        mbrila.load(damaged)


def _rewrite(path, out, **changes):
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            payload[section][field] = value
        else:
            payload[section] = value
    torch.save(payload, out)
    return out


def test_wrong_version_unknown_and_wrong_kind_classes_are_refused(tmp_path):
    _, path = _fitted(tmp_path)
    with pytest.raises(ValueError, match="format version 3; this mbrila reads version 2"):
        mbrila.load(_rewrite(path, tmp_path / "v3.pt", format_version=3))
    with pytest.raises(ValueError, match="cannot be imported"):
        mbrila.load(_rewrite(path, tmp_path / "unknown.pt", preset="mbrila.models.presets:NoSuchPreset"))
    with pytest.raises(ValueError, match="not a MultiRegionLatentModel subclass"):
        mbrila.load(_rewrite(path, tmp_path / "kind.pt", preset="os:system"))
    with pytest.raises(ValueError, match="not an import path"):
        mbrila.load(_rewrite(path, tmp_path / "odd.pt", preset="__import__('os')"))
    env = torch.load(path, weights_only=True)
    env["kernels"]["across"][0]["class"] = "subprocess:Popen"
    torch.save(env, tmp_path / "kernel.pt")
    with pytest.raises(ValueError, match="not a BaseKernel subclass"):
        mbrila.load(tmp_path / "kernel.pt")
    with pytest.raises(ValueError, match="EMEngine"):
        mbrila.load(_rewrite(path, tmp_path / "engine.pt", engine={"class": "builtins:dict", "settings": {}}))
    with pytest.raises(ValueError, match="do not fit the model"):
        state = dict(env["state"])
        state.pop(next(iter(state)))
        mbrila.load(_rewrite(path, tmp_path / "state.pt", state=state))
    with pytest.raises(ValueError, match="unknown dtype"):
        mbrila.load(_rewrite(path, tmp_path / "dtype.pt", dtype="complex1024"))


def test_a_format_1_pickle_is_refused_with_the_converter_named_and_converts(tmp_path):
    model, _ = _fitted(tmp_path)
    legacy = tmp_path / "legacy.pt"
    torch.save({"format": "mbrila-model", "format_version": 1, "mbrila_version": "0.1.0.dev0", "model": model}, legacy)
    with pytest.raises(ValueError, match="convert_legacy_file"):
        mbrila.load(legacy)
    new = tmp_path / "new.pt"
    mbrila.models.convert_legacy_file(legacy, new)
    data = tiny_data()
    assert torch.equal(mbrila.load(new).predict(data), model.predict(data))


def test_settings_that_are_not_plain_data_cannot_be_saved(tmp_path):
    data = tiny_data()
    model = build("dlag_ssm", {}, data)
    model.engine.method = object()  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"engine\.method"):
        model.save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------------------- checkpoints
class _Stop(Exception):
    pass


def _stop_at(k):
    def callback(it, score):
        if it == k:
            raise _Stop

    return callback


# Every engine once (exact, Kalman, ADM, LDS, the three ARD engines, Laplace), and GPFA's over-relaxed SDE latents.
RESUME_CASES = CASES[:9]


@pytest.mark.parametrize(("name", "kw"), RESUME_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(RESUME_CASES)])
def test_an_interrupted_fit_resumes_to_identical_parameters_and_trace(tmp_path, name, kw):
    data = tiny_counts() if kw.get("observation") == "poisson" else tiny_data()
    reference = build(name, kw, data)
    full = reference.fit(data, max_iter=14, tol=0.0, progress=False)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Stop):
        build(name, kw, data).fit(
            data, max_iter=14, tol=0.0, progress=False, checkpoint=ckpt, checkpoint_every=3, callback=_stop_at(8)
        )
    assert torch.load(ckpt, weights_only=True)["fit"]["iteration"] == 6  # the last multiple of 3 before 8
    resumed_model = build(name, kw, data)
    resumed = resumed_model.fit(data, max_iter=14, tol=0.0, progress=False, resume=ckpt)
    assert resumed.score_trace == full.score_trace
    ref_state, state = reference.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)


def test_resuming_a_finished_fit_returns_at_once_and_checkpoints_are_loadable_models(tmp_path):
    data = tiny_data()
    ckpt = tmp_path / "run.ckpt"
    model = build("dlag_ssm", {}, data)
    first = model.fit(data, max_iter=5, progress=False, checkpoint=ckpt)
    again = build("dlag_ssm", {}, data).fit(data, max_iter=5, progress=False, resume=ckpt)
    assert again.score_trace == first.score_trace and again.stop_reason == "resumed a finished fit"
    assert torch.equal(mbrila.load(ckpt).predict(data), model.predict(data))


def test_resume_refuses_other_data_other_models_and_model_files(tmp_path):
    data = tiny_data()
    ckpt = tmp_path / "run.ckpt"
    build("dlag_ssm", {}, data).fit(data, max_iter=2, progress=False, checkpoint=ckpt)
    with pytest.raises(ValueError, match="other data"):
        build("dlag_ssm", {}, data).fit(tiny_data(seed=1), max_iter=2, progress=False, resume=ckpt)
    with pytest.raises(ValueError, match=r"a checkpoint of a .*DLAG fit; this model is a .*GPFA"):
        build("gpfa", {}, data).fit(data, max_iter=2, progress=False, resume=ckpt)
    other = mbrila.build_model("dlag_ssm", latent_spec=LatentSpec(1, 2), y_dims=data.y_dims, T=data.T)
    with pytest.raises(ValueError, match=r"other arguments.*latent_spec"):
        other.fit(data, max_iter=2, progress=False, resume=ckpt)
    plain = tmp_path / "model.pt"
    build("dlag_ssm", {}, data).save(plain)
    with pytest.raises(ValueError, match="not a fit checkpoint"):
        build("dlag_ssm", {}, data).fit(data, progress=False, resume=plain)
    with pytest.raises(ValueError, match="checkpoint_every"):
        build("dlag_ssm", {}, data).fit(data, progress=False, checkpoint=ckpt, checkpoint_every=0)


CHILD = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(int(sys.argv[2]))
    from tests.unit.test_model_files import build, tiny_data
    data = tiny_data()
    model = build("dlag_ssm", {}, data)
    # The sleep slows the loop so the parent can kill it mid-way; it does not touch the numbers.
    model.fit(data, max_iter=40, tol=0.0, progress=False, checkpoint=sys.argv[1], checkpoint_every=2,
              callback=lambda it, score: time.sleep(0.15))
    """
)


def test_a_fit_killed_by_a_signal_resumes_to_the_uninterrupted_result(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    threads = torch.get_num_threads()
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ckpt), str(threads)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 50
        killed_at = None
        while time.monotonic() < deadline and child.poll() is None:
            if ckpt.exists():
                it = torch.load(ckpt, weights_only=True)["fit"]["iteration"]
                if it >= 6:
                    child.send_signal(signal.SIGKILL)
                    killed_at = it
                    break
            time.sleep(0.05)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert killed_at is not None and child.returncode == -signal.SIGKILL, child.returncode
    saved = torch.load(ckpt, weights_only=True)["fit"]
    assert not saved["done"] and 6 <= saved["iteration"] < 40
    data = tiny_data()
    torch.set_num_threads(threads)
    resumed_model = build("dlag_ssm", {}, data)
    resumed = resumed_model.fit(data, max_iter=40, tol=0.0, progress=False, resume=ckpt)
    reference = build("dlag_ssm", {}, data)
    full = reference.fit(data, max_iter=40, tol=0.0, progress=False)
    assert resumed.score_trace == full.score_trace and resumed.n_iter == 40
    ref_state, state = reference.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)


# ---------------------------------------------------------------------------------------------- how a fit ends
def test_a_fit_at_its_cap_says_so_in_a_log_line_and_the_result(caplog):
    data = tiny_data()
    with caplog.at_level(logging.INFO, logger="mbrila"):
        res = build("dlag_ssm", {}, data).fit(data, max_iter=3, tol=0.0, progress=False)
    assert res.stop_reason == "max_iter" and not res.converged
    assert any(
        r.levelno == logging.WARNING and "stopped at max_iter = 3 without converging" in r.message
        for r in caplog.records
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mbrila"):
        res = build("dlag_ssm", {}, data).fit(data, max_iter=500, tol=1e-3, progress=False)
    assert res.converged and res.stop_reason == "converged"
    assert any(r.levelno == logging.INFO and "(converged)" in r.message for r in caplog.records)
    text = repr(res)
    assert len(text) < 200 and "converged=True" in text and f"n_iter={res.n_iter}" in text


def test_no_progress_bar_is_written_when_stderr_is_not_a_terminal(capfd):
    data = tiny_data()
    build("dlag_ssm", {}, data).fit(data, max_iter=5, tol=0.0, progress=True)
    err = capfd.readouterr().err
    assert "\r" not in err and "it/s" not in err


def test_the_v1v2_cli_checkpoints_each_split_and_resumes_from_them(tmp_path):
    from mbrila.experiments.cli import v1v2_demo

    rng = np.random.default_rng(0)
    z = rng.standard_normal((16, 12, 2)).cumsum(1) * 0.3
    regions = {
        "A": z @ rng.standard_normal((2, 8)) + 0.3 * rng.standard_normal((16, 12, 8)),
        "B": z @ rng.standard_normal((2, 6)) + 0.3 * rng.standard_normal((16, 12, 6)),
    }
    path = tmp_path / "rec.npz"
    np.savez(path, **regions)
    ckpt = tmp_path / "fit.ckpt"
    argv = ["--data-path", str(path), "--device", "cpu", "--max-iter", "6", "--split-seeds", "0,1", "--no-progress"]
    argv += ["--n-holdout-seeds", "1", "--checkpoint", str(ckpt), "--checkpoint-every", "2"]
    first = v1v2_demo("dlag_ssm", "test", argv=[*argv, "--out-dir", str(tmp_path / "a")])
    for split in (0, 1):
        saved = torch.load(tmp_path / f"fit.split{split}.ckpt", weights_only=True)["fit"]
        assert saved["done"] and saved["iteration"] == first["per_split"][split]["n_iter"]
    again = v1v2_demo("dlag_ssm", "test", argv=[*argv, "--resume", "--out-dir", str(tmp_path / "b")])
    for key in ("holdout_psth_rmse_A", "holdout_trial_rmse_B", "selected_iter", "n_iter"):
        assert again[key] == first[key], key
    with pytest.raises(SystemExit, match="--resume needs --checkpoint"):
        v1v2_demo("dlag_ssm", "test", argv=["--data-path", str(path), "--resume", "--out-dir", str(tmp_path / "c")])
