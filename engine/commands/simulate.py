"""``python -m engine simulate``: the simulated exchange alone (arguments and lifecycle in engine.sim.cli)."""

from __future__ import annotations

from engine.cli import register_command
from engine.sim.cli import add_simulate_arguments, run_simulate

__all__: list[str] = []

register_command(
    "simulate",
    add_simulate_arguments,
    run_simulate,
    help="run the Backpack-compatible simulated exchange alone, for any Backpack client",
)
