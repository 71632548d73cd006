"""A chat connection's health (Discord's gateway, Slack's Socket Mode), as `rankbot status` and
the supervisor that restarts it see it (pure).

A connection is `connecting` until it is first up, then `connected` or `down`; `refused` when
the platform turned its token away, which no retry can mend. Each change of state is a new
`ConnectionState`; reconnects are remembered for a day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

State = Literal["connecting", "connected", "down", "refused"]
DOWN_TOO_LONG = timedelta(minutes=10)  # past this, `status --check` says degraded
REMEMBERED = timedelta(days=1)
MAX_ERROR = 300  # characters of an error kept for `status`


@dataclass(frozen=True, slots=True)
class ConnectionState:
    platform: str
    state: State
    since: datetime  # when it entered this state
    reconnects: tuple[datetime, ...] = ()  # times it came back up, within REMEMBERED
    last_error: str | None = None
    last_error_at: datetime | None = None


def starting(platform: str, at: datetime) -> ConnectionState:
    return ConnectionState(platform, "connecting", at)


def connected(state: ConnectionState, at: datetime) -> ConnectionState:
    """Up: a reconnect when it was up before (it went down, or was restarted)."""
    if state.state == "connected":
        return state
    came_back = state.state == "down" or bool(state.reconnects) or state.last_error is not None
    kept = tuple(t for t in state.reconnects if at - t < REMEMBERED)
    return replace(state, state="connected", since=at,
                   reconnects=(*kept, at) if came_back else kept)


def failed(state: ConnectionState, at: datetime, error: str, *, refused: bool = False
           ) -> ConnectionState:
    """Down (or refused for good); a connection already down stays down since it first was."""
    new: State = "refused" if refused else "down"
    since = state.since if state.state == new else at
    return replace(state, state=new, since=since, last_error=error[:MAX_ERROR],
                   last_error_at=at)


def down_too_long(state: ConnectionState, now: datetime) -> bool:
    """Refused, or not up for longer than DOWN_TOO_LONG: worth an operator's look."""
    return state.state == "refused" or (
        state.state in ("down", "connecting") and now - state.since > DOWN_TOO_LONG)


def describe(state: ConnectionState, now: datetime) -> str:
    """One line for `rankbot status`."""
    when = f"{state.since:%Y-%m-%d %H:%M} UTC"
    head = {"connected": f"connected since {when}", "connecting": f"connecting since {when}",
            "down": f"down since {when}", "refused": f"token refused at {when}"}[state.state]
    recent = sum(1 for t in state.reconnects if now - t < REMEMBERED)
    parts = [head, f"{recent} reconnect{'s' if recent != 1 else ''} in the last day"]
    if state.last_error and state.last_error_at:
        parts.append(f"last error {state.last_error_at:%Y-%m-%d %H:%M} UTC: {state.last_error}")
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter, capped: the n-th retry (from 0) waits between half and
    all of base·2ⁿ, never more than `cap` seconds, so reconnecting clients do not beat in
    step and the wait still grows."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempt: int, draw: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 30))
        return ceiling * (0.5 + (random.random() if draw is None else draw) / 2)
