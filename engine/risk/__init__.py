"""Pre-trade risk: pure rules (``engine.risk.rules``) that the risk actor applies to every intent."""

from engine.risk.rules import RATE_WINDOW_MS as RATE_WINDOW_MS
from engine.risk.rules import Approve as Approve
from engine.risk.rules import Block as Block
from engine.risk.rules import BlockCode as BlockCode
from engine.risk.rules import Outcome as Outcome
from engine.risk.rules import RiskBook as RiskBook
from engine.risk.rules import RiskLimits as RiskLimits
from engine.risk.rules import Verdict as Verdict
from engine.risk.rules import check as check
from engine.risk.rules import current_quote as current_quote
from engine.risk.rules import halt as halt
from engine.risk.rules import is_perp as is_perp
from engine.risk.rules import observe_equity as observe_equity
from engine.risk.rules import resume as resume
from engine.risk.rules import risk_state as risk_state

__all__ = [
    "RATE_WINDOW_MS",
    "Approve",
    "Block",
    "BlockCode",
    "Outcome",
    "RiskBook",
    "RiskLimits",
    "Verdict",
    "check",
    "current_quote",
    "halt",
    "is_perp",
    "observe_equity",
    "resume",
    "risk_state",
]
