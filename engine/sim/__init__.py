"""The Backpack-compatible simulated exchange: a real REST + WebSocket server on loopback over a pure core.

Public surface: ``serve_simulator`` (the server; reports a ``SimHandle``), ``SimConfig`` / ``FaultConfig`` (its
configuration section), ``Faults`` (run-time fault injection) and the CLI hooks in ``engine.sim.cli``.
"""

from __future__ import annotations

from engine.sim.config import FaultConfig as FaultConfig
from engine.sim.config import SimConfig as SimConfig
from engine.sim.faults import Faults as Faults
from engine.sim.faults import FaultStats as FaultStats
from engine.sim.server import ServerStats as ServerStats
from engine.sim.server import SimHandle as SimHandle
from engine.sim.server import serve_simulator as serve_simulator

__all__ = ["FaultConfig", "FaultStats", "Faults", "ServerStats", "SimConfig", "SimHandle", "serve_simulator"]
