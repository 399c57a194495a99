"""Supervised actor runtime: restart policy, supervisor, channels and signal-driven shutdown.

I/O-level code on trio; the maths (``Backoff``, ``RestartPolicy``) are pure values. See each module's
docstring for its invariants and ``supervisor`` for the actor and shutdown contract.
"""

from engine.runtime.backoff import Backoff as Backoff
from engine.runtime.channels import BoundedChannel as BoundedChannel
from engine.runtime.channels import LatestChannelStatistics as LatestChannelStatistics
from engine.runtime.channels import LatestReceiver as LatestReceiver
from engine.runtime.channels import LatestSender as LatestSender
from engine.runtime.channels import LatestValue as LatestValue
from engine.runtime.channels import open_latest_channel as open_latest_channel
from engine.runtime.policy import RestartPolicy as RestartPolicy
from engine.runtime.policy import SupervisorConfig as SupervisorConfig
from engine.runtime.shutdown import ShutdownSummary as ShutdownSummary
from engine.runtime.shutdown import restore_default_sigint as restore_default_sigint
from engine.runtime.shutdown import run_until_signal as run_until_signal
from engine.runtime.supervisor import ActorSpec as ActorSpec
from engine.runtime.supervisor import ActorState as ActorState
from engine.runtime.supervisor import ActorStats as ActorStats
from engine.runtime.supervisor import Supervisor as Supervisor
from engine.runtime.supervisor import SupervisorStatistics as SupervisorStatistics
from engine.runtime.supervisor import cleanup_scope as cleanup_scope
from engine.runtime.supervisor import run_supervised as run_supervised

__all__ = [
    "ActorSpec",
    "ActorState",
    "ActorStats",
    "Backoff",
    "BoundedChannel",
    "LatestChannelStatistics",
    "LatestReceiver",
    "LatestSender",
    "LatestValue",
    "RestartPolicy",
    "ShutdownSummary",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorStatistics",
    "cleanup_scope",
    "open_latest_channel",
    "restore_default_sigint",
    "run_supervised",
    "run_until_signal",
]
