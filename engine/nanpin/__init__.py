"""The pure nanpin strategy (no I/O, no clock reads): configuration, ``decide()`` and ``apply_fill()``.

``decide(inp, state, cfg) -> Decision`` and ``apply_fill(state, fill, cfg) -> StrategyState`` implement
``nanpin-strategy.md``; both are total and deterministic. See each module's docstring for its invariants.
"""

from __future__ import annotations

from engine.nanpin.backtest import BacktestResult as BacktestResult
from engine.nanpin.backtest import run_backtest as run_backtest
from engine.nanpin.config import Level as Level
from engine.nanpin.config import NanpinConfig as NanpinConfig
from engine.nanpin.decide import decide as decide
from engine.nanpin.decide import delever_intent_id as delever_intent_id
from engine.nanpin.decide import intent_id_for as intent_id_for
from engine.nanpin.fill import apply_fill as apply_fill
from engine.nanpin.types import Account as Account
from engine.nanpin.types import Bar as Bar
from engine.nanpin.types import Decision as Decision
from engine.nanpin.types import DecisionInput as DecisionInput
from engine.nanpin.types import Diagnostics as Diagnostics
from engine.nanpin.types import FearGreed as FearGreed
from engine.nanpin.types import FillReport as FillReport
from engine.nanpin.types import LevelDiag as LevelDiag
from engine.nanpin.types import LiqCluster as LiqCluster
from engine.nanpin.types import MarketRules as MarketRules
from engine.nanpin.types import OrderIntent as OrderIntent
from engine.nanpin.types import Position as Position
from engine.nanpin.types import PriceObs as PriceObs
from engine.nanpin.types import Projection as Projection
from engine.nanpin.types import RiskEvent as RiskEvent
from engine.nanpin.types import StrategyState as StrategyState
from engine.nanpin.types import attempt_client_id as attempt_client_id
from engine.nanpin.types import client_id_for as client_id_for

__all__ = [
    "Account",
    "BacktestResult",
    "Bar",
    "Decision",
    "DecisionInput",
    "Diagnostics",
    "FearGreed",
    "FillReport",
    "Level",
    "LevelDiag",
    "LiqCluster",
    "MarketRules",
    "NanpinConfig",
    "OrderIntent",
    "Position",
    "PriceObs",
    "Projection",
    "RiskEvent",
    "StrategyState",
    "apply_fill",
    "attempt_client_id",
    "client_id_for",
    "decide",
    "delever_intent_id",
    "intent_id_for",
    "run_backtest",
]
