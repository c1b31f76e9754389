"""The retention timeline: which storage class holds data of each age, and when it is deleted."""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

from components.core import config
from components.core.config import StackConfig
from tools.cost.usage import hours_to_days
from tools.cost.pricing import class_spans


# ---------------------------------------------------------------- retention timeline
def timeline(retentions: Mapping[str, Optional[float]], transitions: Sequence[tuple[int, str]],
             expire_days: Optional[int], noncurrent_days: Optional[int] = None,
             min_days: Mapping[str, int] = {}, gb_month: Mapping[str, float] = {}) -> dict:
    """Events by object age (days) for a tool's data, and what is wrong with them.

    `retentions`: per kind of data, the age at which the tool stops serving and deletes it
    (None = forever). Plain data on purpose: it also judges rules the config model would refuse.
    `gb_month`: storage price per class, to tell whether a transition billed a minimum duration
    still costs less than staying in the class it leaves.
    """
    events: list[tuple[float, str]] = [(0.0, "written in STANDARD")]
    problems: list[str] = []
    notes: list[str] = []
    finite = [d for d in retentions.values() if d is not None]
    last_served = None if len(finite) < len(retentions) else max(finite, default=0.0)
    ends = {label: min(d for d in (served, expire_days) if d is not None) if (served, expire_days) != (None, None) else None
            for label, served in retentions.items()}
    for day, cls in sorted(transitions):
        reached = [label for label, end in ends.items() if end is None or day < end]
        if not reached:
            events.append((day, f"(moves to {cls}: never reached, every object is deleted before)"))
            continue
        events.append((day, f"moves to {cls} (bucket rule)" + ("" if len(reached) == len(ends) else f" for {', '.join(reached)}")))
        if cls in config.ARCHIVE_CLASSES:
            # Every label reached is still served on that day: day < end <= served (or served forever).
            for label in reached:
                served = retentions[label]
                until = "forever" if served is None else f"until day {served:g}"
                problems.append(f"{label}: unreadable from day {day:g} ({cls} needs a restore; queriers get "
                                f"403 InvalidObjectState) while the tool serves it {until}")
    for label, served in retentions.items():
        if served is None:
            events.append((math.inf, f"{label}: kept and queryable forever (no tool deletion)"))
        else:
            events.append((served, f"{label}: last queryable, deleted by the tool (retention + delete delay)"))
    if expire_days is not None:
        events.append((float(expire_days), "bucket rule expires what is left (safety net)"))
        for label, served in retentions.items():
            if served is None or expire_days <= served:
                until = "forever" if served is None else f"day {served:g}"
                problems.append(f"{label}: the bucket rule deletes it at day {expire_days}, before the tool's own "
                                f"retention ends ({until}): queries return gaps")
    if noncurrent_days:
        for label, end in ends.items():
            if end is not None:
                events.append((end + noncurrent_days, f"{label}: noncurrent versions expire (versioned bucket, {noncurrent_days}d)"))
    for label, end in ends.items():
        if end is None:
            continue
        spans = class_spans(end, transitions)
        for i, (cls, start, stop) in enumerate(spans):
            kept = stop - start + ((noncurrent_days or 0) if stop == end else 0)
            minimum = min_days.get(cls, 0)
            if kept < minimum:
                left = spans[i - 1][0] if i else None
                note = f"{label}: {kept:g} days in {cls}, billed {minimum} (minimum duration): "
                # A class cheap enough beats staying put even when billed its whole minimum.
                if left in gb_month and cls in gb_month and minimum * gb_month[cls] < kept * gb_month[left]:
                    note += (f"still less than {kept:g} days in {left} ({minimum} x {gb_month[cls]:g} < "
                             f"{kept:g} x {gb_month[left]:g} per GB)")
                else:
                    note += f"the transition at day {start:g} costs more than it saves"
                notes.append(note)
    if last_served is None and expire_days is None:
        notes.append("some data is kept forever: storage grows without bound")
    events.sort(key=lambda e: e[0])
    return {"events": [{"day": None if math.isinf(d) else d, "event": text} for d, text in events],
            "problems": problems, "notes": notes}


def tool_retentions(cfg: StackConfig, tool: str) -> dict[str, Optional[float]]:
    t = cfg.tools.enabled()[tool]
    if tool != "thanos":
        return {"chunks" if tool == "loki" else "blocks": hours_to_days(t.served_hours())}
    delay = t.delete_delay_hours / 24
    r = t.retention
    return {label: (days + delay if days else None) for label, days in
            (("raw", r.raw_days), ("5m", r.five_minute_days), ("1h", r.one_hour_days))}
