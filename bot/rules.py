"""Alert rules: the thresholds that decide which changes are worth a message."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Rules:
    top_n: int = 20
    min_rank_move: int = 3
    min_price_change_pct: Decimal = Decimal(10)


DEFAULT_RULES = Rules()
