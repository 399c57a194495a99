"""Restart policy as data, and the ``[supervisor]`` configuration section that produces it (pure).

``RestartPolicy`` answers three questions for the supervisor and nothing else:

* which failures may be restarted (``is_restartable``): by default only ``TransientError``; anything
  else - ``FatalError`` (config, auth, invariant) or an unclassified bug - stops the whole engine;
* how long to wait before the next attempt (``backoff``; the first retry is immediate);
* when to give up (more than ``max_restarts`` restarts of one actor within ``within_s`` seconds: the
  Erlang "restart intensity"), and when a run was healthy long enough (``reset_after_s``, counted from
  the moment the failed attempt signalled readiness) that the backoff attempt counter starts again from
  0, i.e. the next restart is immediate again.

Invariant: a policy is immutable and holds no clock; the supervisor passes times in.
"""

from __future__ import annotations

from typing import Any

import attrs

from engine.confspec import at_least, greater_than, in_range, setting
from engine.errors import ProtocolError, TransientError
from engine.runtime.backoff import Backoff

__all__ = ["RestartPolicy", "SupervisorConfig"]


def _exception_types(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(t, type) and issubclass(t, Exception) for t in value
    ):
        raise ValueError(f"must be a tuple of Exception subclasses; got {value!r}")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """What the supervisor does when one actor fails (see the module docstring)."""

    restartable: tuple[type[Exception], ...] = attrs.field(
        default=(TransientError,), validator=_exception_types
    )
    max_restarts: int = attrs.field(default=5, validator=at_least(0))
    within_s: float = attrs.field(default=60.0, validator=greater_than(0))
    backoff: Backoff = attrs.field(factory=Backoff)
    reset_after_s: float = attrs.field(default=30.0, validator=greater_than(0))

    def is_restartable(self, exc: BaseException) -> bool:
        """True when ``exc`` (a single exception, not a group) is one of the restartable types."""
        return isinstance(exc, self.restartable)


@attrs.frozen(kw_only=True)
class SupervisorConfig:
    """``[supervisor]``: restart backoff, restart intensity cap and shutdown grace for every actor."""

    backoff_initial_s: float = setting(
        0.1, "Upper bound of the random delay before the second retry (the first is immediate)",
        unit="s", check=greater_than(0),
    )
    backoff_max_s: float = setting(
        30.0, "Cap on the random restart delay", unit="s", check=greater_than(0),
    )
    backoff_factor: float = setting(
        2.0, "Growth of the delay bound per consecutive failure", check=in_range(1, 100),
    )
    max_restarts: int = setting(
        30, "Restarts of one actor allowed within within_s before the engine stops (with the default "
        "backoff this rides out an exchange outage of several minutes)", check=at_least(0),
    )
    within_s: float = setting(
        600.0, "Window of the restart intensity cap", unit="s", check=greater_than(0),
    )
    healthy_reset_s: float = setting(
        30.0, "Running this long without failing resets an actor's backoff to an immediate retry",
        unit="s", check=greater_than(0),
    )
    shutdown_grace_s: float = setting(
        5.0, "Time each actor's shielded cleanup gets on shutdown (cancel orders, flush journal)",
        unit="s", check=greater_than(0),
    )

    def __attrs_post_init__(self) -> None:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s must be >= backoff_initial_s ({self.backoff_initial_s}); "
                f"got {self.backoff_max_s}"
            )

    def to_policy(self) -> RestartPolicy:
        """The engine's actor policy: restart on ``TransientError`` and on ``ProtocolError``.

        A malformed reply from the exchange is bad input, not a bug of ours: the actor that met it starts
        again from a clean state (reconnect, re-snapshot, reconcile) and the restart is logged and counted;
        the intensity cap still stops an engine that only ever sees garbage.
        """
        return RestartPolicy(
            restartable=(TransientError, ProtocolError),
            max_restarts=self.max_restarts,
            within_s=self.within_s,
            backoff=Backoff(
                initial_s=self.backoff_initial_s, max_s=self.backoff_max_s, factor=self.backoff_factor
            ),
            reset_after_s=self.healthy_reset_s,
        )
