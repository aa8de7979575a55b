"""Error-budget arithmetic over good/total counts: SLI, budget, burn rates, exhaustion,
the budget policy, the multiwindow multi-burn-rate alert table and history points.

Definitions (B = 1 - objective/100, the share of events allowed to be bad):
- A window ending at time t holds the minutes that start in [t - w, t). A status at `now`
  ends at `window_end(now)`, the end of the minute `now` falls in, so the current minute
  counts as far as it has been counted.
- SLI = good / total; None without traffic.
- burn rate over w = (bad / total over w) / B: 1 spends the budget exactly over the SLO
  window; 0 without traffic (no traffic is not a violation).
- error budget over the SLO window: total = B x total events (bad events allowed),
  consumed = bad events, remaining = total - consumed, remaining_ratio = 1 - bad / (B x
  total), which goes negative once overspent; 1 without traffic.
- time to exhaustion (seconds) = remaining_ratio x window / burn rate over 1h: at burn rate
  r the budget drains r x dt / window of itself in dt, so this is how long the budget left
  lasts if the last hour's burn continues (and traffic stays as it was). None when the
  1h burn rate is 0 or the budget is already spent.
- policy: `freeze` when remaining_ratio <= 0, `warn` when below `warn_below`, else `ok`.
- Burn-rate alerts (SRE workbook, "Alerting on SLOs"): a row fires when the burn rates over
  its long and its short window are both above its threshold and the long window holds at
  least `min_events` events. Thresholds spend a fixed share of the budget in the long
  window: threshold = share x SLO window / long window, i.e. 14.4, 6, 3 and 1 for 30 days;
  rows whose long window is longer than the SLO window are left out.
- Counts over a range come from hourly sums and the minutes of the partial hours at its
  ends (`MinutesAndHours`), so a long window costs one row per hour, not per minute.
- History points end at `history_times` (`step` apart, the last at `window_end(end)`):
  SLI and budget over the SLO window ending at the point, burn rate over the step.

Arithmetic is exact (fractions), rounded to float once, so a test can state the value.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from app.domain.durations import parse_duration_seconds

Policy = Literal["ok", "warn", "freeze"]
# The windows a status reports burn rates over: every window of the alert table.
BURN_RATE_WINDOWS: dict[str, int] = {
    "5m": 300,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "6h": 21600,
    "1d": 86400,
    "3d": 259200,
}
MAX_HISTORY_POINTS = 2000
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Counts:
    good: int = 0
    total: int = 0

    @property
    def bad(self) -> int:
        return self.total - self.good

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.good - other.good, self.total - other.total)


@dataclass(frozen=True, slots=True)
class AlertWindow:
    """One row of the workbook's table: `budget_percent` of the budget spent in `long`."""

    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    budget_percent: int

    @property
    def long_s(self) -> int:
        return int(parse_duration_seconds(self.long_window))

    def threshold(self, window_s: int) -> Fraction:
        """The burn rate that spends `budget_percent` of a `window_s` budget in `long`."""
        return Fraction(self.budget_percent * window_s, 100 * self.long_s)


ALERT_TABLE = (
    AlertWindow("page", "1h", "5m", 2),
    AlertWindow("page", "6h", "30m", 5),
    AlertWindow("ticket", "1d", "2h", 10),
    AlertWindow("ticket", "3d", "6h", 10),
)


def alert_windows(window_s: int) -> list[AlertWindow]:
    """The table's rows that fit an SLO window (long window at most the SLO's)."""
    return [row for row in ALERT_TABLE if row.long_s <= window_s]


def window_end(now: datetime) -> datetime:
    """The end of the minute `now` falls in: status windows end there."""
    return now.replace(second=0, microsecond=0) + MINUTE


def budget_share(objective: float) -> Fraction:
    """B = 1 - objective/100, exactly as written (99.9 gives 1/1000, not a binary float)."""
    return 1 - Fraction(Decimal(repr(objective))) / 100


def _burn(counts: Counts, share: Fraction) -> Fraction:
    return Fraction(counts.bad, counts.total) / share if counts.total else Fraction(0)


def burn_rate(counts: Counts, objective: float) -> float:
    return float(_burn(counts, budget_share(objective)))


def sli(counts: Counts) -> float | None:
    return counts.good / counts.total if counts.total else None


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    total: float
    consumed: int
    remaining: float
    remaining_ratio: float


def _remaining_ratio(counts: Counts, share: Fraction) -> Fraction:
    return 1 - _burn(counts, share)


def error_budget(counts: Counts, objective: float) -> ErrorBudget:
    share = budget_share(objective)
    allowed = share * counts.total
    return ErrorBudget(
        total=float(allowed),
        consumed=counts.bad,
        remaining=float(allowed - counts.bad),
        remaining_ratio=float(_remaining_ratio(counts, share)),
    )


def time_to_exhaustion_s(
    window: Counts, last_hour: Counts, objective: float, window_s: int
) -> float | None:
    share = budget_share(objective)
    left = _remaining_ratio(window, share)
    rate = _burn(last_hour, share)
    if rate <= 0 or left <= 0:
        return None
    return float(left * window_s / rate)


def policy(remaining_ratio: float, warn_below: float) -> Policy:
    if remaining_ratio <= 0:
        return "freeze"
    if remaining_ratio < warn_below:
        return "warn"
    return "ok"


@dataclass(frozen=True, slots=True)
class BurnRateCheck:
    """One alert row evaluated: `firing` = both windows burn above `threshold` and the
    long window holds at least the guard's events."""

    row: AlertWindow
    threshold: float
    long_burn_rate: float
    short_burn_rate: float
    long_events: int
    burning: bool
    guarded: bool

    @property
    def firing(self) -> bool:
        return self.burning and not self.guarded


def check_burn_rates(
    counts: Mapping[str, Counts], objective: float, window_s: int, min_events: int
) -> list[BurnRateCheck]:
    """Every row of the table that fits the window; `counts` maps window names to counts."""
    share = budget_share(objective)
    checks = []
    for row in alert_windows(window_s):
        long, short = counts[row.long_window], counts[row.short_window]
        threshold = row.threshold(window_s)
        long_rate, short_rate = _burn(long, share), _burn(short, share)
        checks.append(
            BurnRateCheck(
                row=row,
                threshold=float(threshold),
                long_burn_rate=float(long_rate),
                short_burn_rate=float(short_rate),
                long_events=long.total,
                burning=long_rate > threshold and short_rate > threshold,
                guarded=long.total < min_events,
            )
        )
    return checks


@dataclass(frozen=True, slots=True)
class SloStatus:
    sli: float | None
    good: int
    total: int
    error_budget: ErrorBudget
    burn_rates: dict[str, float]
    time_to_exhaustion_s: float | None
    policy: Policy
    alerts: list[BurnRateCheck]

    @property
    def no_data(self) -> bool:
        return self.total == 0


def slo_status(
    window: Counts,
    burn_counts: Mapping[str, Counts],
    *,
    objective: float,
    window_s: int,
    warn_below: float,
    min_events: int,
) -> SloStatus:
    """Everything a status says, from the SLO window's counts and each burn window's."""
    budget = error_budget(window, objective)
    return SloStatus(
        sli=sli(window),
        good=window.good,
        total=window.total,
        error_budget=budget,
        burn_rates={name: burn_rate(burn_counts[name], objective) for name in BURN_RATE_WINDOWS},
        time_to_exhaustion_s=time_to_exhaustion_s(window, burn_counts["1h"], objective, window_s),
        policy=policy(budget.remaining_ratio, warn_below),
        alerts=check_burn_rates(burn_counts, objective, window_s, min_events),
    )


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


Rows = Iterable[tuple[datetime, Counts]]


def _cumulative(rows: Rows) -> tuple[list[datetime], list[Counts]]:
    times, sums = [], [Counts()]
    for moment, counts in sorted(rows, key=lambda row: row[0]):
        times.append(moment)
        sums.append(sums[-1] + counts)
    return times, sums


class MinutesAndHours:
    """Counts over any minute-aligned range from hourly sums and the minutes of partial hours.

    With C(t) = the hours before hour_floor(t) plus the minutes from hour_floor(t) to t,
    the counts in [a, b) are C(b) - C(a). `hours` must hold every hour from hour_floor(a)
    to hour_floor(b) and `minutes` every minute of `partial_ranges([a, b])`: reading a
    30-day window takes 720 hourly rows and at most 118 minute rows.
    """

    def __init__(self, hours: Rows, minutes: Rows) -> None:
        self._hour_times, self._hour_sums = _cumulative(hours)
        self._minute_times, self._minute_sums = _cumulative(minutes)

    def before(self, moment: datetime) -> Counts:
        """C(moment), counted from the first hour given."""
        hour = hour_floor(moment)
        minutes = self._minute_sums
        return (
            self._hour_sums[bisect_left(self._hour_times, hour)]
            + minutes[bisect_left(self._minute_times, moment)]
            - minutes[bisect_left(self._minute_times, hour)]
        )

    def between(self, start: datetime, end: datetime) -> Counts:
        return self.before(end) - self.before(start)


def partial_ranges(times: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """The minute ranges [hour_floor(t), t) that `MinutesAndHours` needs, merged."""
    ranges = sorted((hour_floor(t), t) for t in set(times) if t != hour_floor(t))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def history_times(start: datetime, end: datetime, step_s: int) -> list[datetime]:
    """Point times, oldest first, `step_s` apart, the last at the end of the minute `end`
    falls in, none before `start`. Raises ValueError when the step does not fit."""
    if step_s < 60 or step_s % 60:
        raise ValueError("must be whole minutes, at least 1m")
    last = window_end(end)
    count = int((last - start).total_seconds() // step_s) + 1
    if count > MAX_HISTORY_POINTS:
        smallest = math.ceil((last - start).total_seconds() / (MAX_HISTORY_POINTS - 1) / 60)
        raise ValueError(
            f"gives {count} points, more than {MAX_HISTORY_POINTS}; use a step of at "
            f"least {smallest}m or a shorter start..end"
        )
    step = timedelta(seconds=step_s)
    return [last - step * k for k in range(count - 1, -1, -1)]


def history_bounds(times: list[datetime], window_s: int, step_s: int) -> list[datetime]:
    """Every time whose cumulative counts the points need."""
    window, step = timedelta(seconds=window_s), timedelta(seconds=step_s)
    return sorted({t for time in times for t in (time, time - window, time - step)})


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """SLI and budget over the SLO window ending at `time`; burn rate over the step."""

    time: datetime
    sli: float | None
    budget_remaining_ratio: float
    burn_rate: float


def history_points(
    times: list[datetime], counts: MinutesAndHours, objective: float, window_s: int, step_s: int
) -> list[HistoryPoint]:
    share = budget_share(objective)
    window, step = timedelta(seconds=window_s), timedelta(seconds=step_s)
    points = []
    for time in times:
        in_window = counts.between(time - window, time)
        points.append(
            HistoryPoint(
                time=time,
                sli=sli(in_window),
                budget_remaining_ratio=float(_remaining_ratio(in_window, share)),
                burn_rate=float(_burn(counts.between(time - step, time), share)),
            )
        )
    return points
