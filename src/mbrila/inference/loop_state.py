"""What the EM loop carries from one iteration to the next, so that a fit can stop and resume exactly.

At the top of iteration ``k`` (before its E-step) the loop is fully described by the model's parameters ``θ_k``
plus a :class:`LoopState`: the scores ``θ_0 … θ_{k−1}`` earned, the convergence counter, the optimiser's moments and
learning rate, the engine's own carry-over (the over-relaxation step size and the plain update it may restore, the
Laplace engine's last modes, the frequency engine's gaps) and the callback's state. Restoring all of it and running
from ``k`` repeats the uninterrupted fit operation for operation, so the parameters and score trace are identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LoopState:
    """The EM loop between iterations (module docstring); plain data and tensors only, so it can be saved safely.

    Attributes
    ----------
    iteration : the next iteration ``k`` to run (its E-step scores ``θ_k``).
    trace : scores of ``θ_0 … θ_{k−1}``.
    calm : consecutive iterations whose relative change was below ``tol``.
    optimizer : the gradient M-step optimiser's state (None: no optimiser).
    carry : the engine's carry-over (:meth:`~mbrila.inference.em.EMEngine._carry`).
    callback : the callback's ``state_dict()`` when it has one.
    done : the fit has ended (``iteration`` is then its ``n_iter``); ``converged`` says how.
    """

    iteration: int
    trace: list[float]
    calm: int = 0
    optimizer: dict[str, Any] | None = None
    carry: dict[str, Any] = field(default_factory=dict)
    callback: dict[str, Any] | None = None
    done: bool = False
    converged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: Any, source: str) -> LoopState:
        """A LoopState from :meth:`to_dict` output read from ``source`` (a ValueError if it is not one)."""
        if not isinstance(state, dict):
            raise ValueError(f"{source}: the fit state must be a dict; got {type(state).__name__}.")
        try:
            out = cls(**state)
            out.iteration = int(out.iteration)
            out.trace = [float(s) for s in out.trace]
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: the fit state is malformed ({err}).") from err
        if out.iteration < 0 or (len(out.trace) != out.iteration and not out.done):
            raise ValueError(f"{source}: the fit state has {len(out.trace)} scores for iteration {out.iteration}.")
        return out
