"""Bucket rules as the report prices them, the monthly cost of each stream and request line, the
block-volume baseline, and the estimate of a stack."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Sequence

from components.core import config, lifecycle
from components.core.config import StackConfig, Target
from tools.cost.facts import DAYS_PER_MONTH, INGEST_OF, INT_TIERS, INTELLIGENT_TIERING, KIB_PER_GIB, RETRIEVAL_CLASSES, RULE_WARN_SHARE
from tools.cost.usage import RequestLine, Stream, tool_load
from tools.cost.prices import class_price
from tools.cost.topology import Topology


# ---------------------------------------------------------------- bucket rules
@dataclass(frozen=True)
class BucketRules:
    """What the bucket itself does to a tool's data, read from components.lifecycle.plan."""

    transitions: tuple[tuple[int, str], ...] = ()
    expire_days: Optional[int] = None
    # Versioned bucket: deleted objects stay this many days as noncurrent versions.
    noncurrent_days: Optional[int] = None
    rule_count: int = 0
    data_rule: str = ""


def bucket_rules(cfg: StackConfig, tool: str) -> BucketRules:
    plan = lifecycle.plan(cfg, tool)
    data = [rule for rule in plan.rules if rule.id.startswith(f"{tool}-data-")]
    noncurrent = [rule.noncurrent_days for rule in plan.rules if rule.noncurrent_days]
    first = data[0] if data else None
    return BucketRules(
        transitions=first.transitions if first else (),
        expire_days=first.expire_days if first else None,
        noncurrent_days=noncurrent[0] if noncurrent else None,
        rule_count=len(plan.rules),
        data_rule=f"{first.id} on {first.prefix!r}" + (f" (+{len(data) - 1} more, one per tenant)" if len(data) > 1 else "") if first else "",
    )


def class_spans(end: float, transitions: Sequence[tuple[float, str]]) -> list[tuple[str, float, float]]:
    """(class, start, stop) object-age spans from creation to deletion at `end`."""
    spans: list[tuple[str, float, float]] = []
    start, cls = 0.0, "STANDARD"
    for day, nxt in sorted(transitions):
        if day >= end:
            break
        spans.append((cls, start, day))
        start, cls = day, nxt
    spans.append((cls, start, end))
    return spans


# ---------------------------------------------------------------- pricing
COST_KEYS = ("storage", "requests", "transitions", "minimum_charges", "monitoring", "retrieval")


@dataclass
class Priced:
    gb: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COST_KEYS, 0.0))
    forever: bool = False

    def add(self, other: "Priced") -> None:
        for cls, gb in other.gb.items():
            self.gb[cls] += gb
        for key, value in other.cost.items():
            self.cost[key] += value
        self.forever = self.forever or other.forever


def price_stream(s: Stream, rules: BucketRules, prices: dict, a: Mapping[str, float]) -> Priced:
    """Steady state of one stream in its bucket: GB per class and what they cost a month."""
    out = Priced()
    ends = [d for d in (s.life_days, rules.expire_days) if d is not None]
    out.forever = not ends
    end = min(ends) if ends else a["forever_days"]
    small = s.object_kb is not None and s.object_kb < a["transition_min_object_kb"]
    spans = class_spans(end, () if small else rules.transitions)
    noncurrent = rules.noncurrent_days or 0
    for i, (cls, start, stop) in enumerate(spans):
        p = class_price(prices, cls)
        current = stop - start
        # A deleted object stays, noncurrent, in the class it was deleted from.
        kept = current + (noncurrent if i == len(spans) - 1 else 0)
        if cls == INTELLIGENT_TIERING:
            for tier, price_key, lo, hi in INT_TIERS:
                days = max(0.0, min(kept, hi) - lo)
                out.gb[tier] += s.gb_per_day * days
                out.cost["storage"] += s.gb_per_day * days * p[price_key]
            if s.object_kb is None or s.object_kb >= p["min_monitored_kb"]:
                out.cost["monitoring"] += s.objects_per_day * kept * p["monitoring_per_1000_objects"] / 1000
        else:
            out.gb[cls] += s.gb_per_day * kept
            out.cost["storage"] += s.gb_per_day * kept * p["gb_month"]
        # Leaving a class early still bills its minimum duration; small objects bill a minimum size.
        short = max(0.0, p.get("min_days", 0) - kept)
        out.cost["minimum_charges"] += s.gb_per_day * short * p["gb_month"]
        if s.object_kb is not None and s.object_kb < p.get("min_object_kb", 0):
            missing_gb = s.objects_per_day * max(kept, p.get("min_days", 0)) * (p["min_object_kb"] - s.object_kb) / KIB_PER_GIB
            out.cost["minimum_charges"] += missing_gb * p["gb_month"]
        if i > 0:
            out.cost["transitions"] += s.objects_per_day * DAYS_PER_MONTH * p["transition_per_1000"] / 1000
        if cls in RETRIEVAL_CLASSES:
            share = a["cold_read_share"]
            out.cost["retrieval"] += share * s.gb_per_day * current * p["retrieval_per_gb"]
            out.cost["retrieval"] += share * s.objects_per_day * current * p["get_per_1000"] / 1000
    standard = class_price(prices, "STANDARD")
    working = s.pending_gb + s.rewritten_gb_per_day * noncurrent
    out.gb["STANDARD"] += working
    out.cost["storage"] += working * standard["gb_month"]
    return out


def price_requests(lines: Sequence[RequestLine], prices: dict) -> list[dict]:
    standard = class_price(prices, "STANDARD")
    out = []
    for line in lines:
        puts, gets = line.put_list_per_day * DAYS_PER_MONTH, line.get_per_day * DAYS_PER_MONTH
        out.append({"what": line.what, "put_list_per_month": puts, "get_per_month": gets,
                    "cost": puts * standard["put_per_1000"] / 1000 + gets * standard["get_per_1000"] / 1000})
    return out


def baseline_cost(gb: float, prices: dict, headroom: float, replicas: float) -> float:
    """The same GB on block volumes: provisioned with headroom, once per replica."""
    return gb * headroom * replicas * prices["volume"]["gb_month"]


def saving_ratio(object_cost: float, baseline: float) -> Optional[float]:
    """Share of the block-volume cost that object storage saves; None when nothing is billed."""
    return None if baseline <= 0 else 1 - object_cost / baseline


def estimate(cfg: StackConfig, ingest: Mapping[str, float], prices: dict, a: Mapping[str, float],
             headroom: float, replicas: float, topo: Topology) -> dict:
    """Unrounded figures per tool and in total, for ingest in INGEST_UNITS."""
    tools: dict[str, dict] = {}
    # Buckets this stack owns: a Thanos spoke's metrics are its hub's to pay for.
    for name, tool_cfg in cfg.tools.owned().items():
        load = tool_load(cfg, name, ingest[INGEST_OF[name]], a, topo)
        gb_per_day = load.stored_gb_per_day
        rules = bucket_rules(cfg, name)
        priced = Priced()
        for stream in load.streams:
            priced.add(price_stream(stream, rules, prices, a))
        request_lines = price_requests(load.requests, prices)
        priced.cost["requests"] = sum(line["cost"] for line in request_lines)
        total = sum(priced.cost.values())
        # The volumes would hold the same stored bytes: the tools compress alike on a filesystem.
        base_gb = gb_per_day * load.baseline_days * headroom * replicas
        base = baseline_cost(gb_per_day * load.baseline_days, prices, headroom, replicas)
        tools[name] = {
            "bucket": tool_cfg.bucket, "ingest": INGEST_OF[name], "ingest_value": ingest[INGEST_OF[name]],
            "gb_per_day": gb_per_day,
            "gb_by_class": {cls: gb for cls, gb in priced.gb.items() if gb > 0},
            "gb_total": sum(priced.gb.values()),
            "cost": {**priced.cost, "total": total},
            "request_lines": request_lines,
            "baseline": {"gb": base_gb, "cost": base},
            "saving_ratio": saving_ratio(total, base),
            "forever": priced.forever,
            "rules": rules,
            "notes": list(load.notes),
            "figures": dict(load.figures),
        }
    gb = sum(t["gb_total"] for t in tools.values())
    account = prices["account"]
    credit = min(gb, account["included_gb"]) * class_price(prices, "STANDARD")["gb_month"]
    object_total = sum(t["cost"]["total"] for t in tools.values()) + account["base_month"] - credit
    base_total = sum(t["baseline"]["cost"] for t in tools.values())
    return {
        "tools": tools,
        "account": {"base_month": account["base_month"], "included_gb": account["included_gb"], "included_credit": credit},
        "total": {"gb": gb, "object_storage": object_total, "baseline_gb": sum(t["baseline"]["gb"] for t in tools.values()),
                  "baseline": base_total, "saving_ratio": saving_ratio(object_total, base_total)},
    }


# ---------------------------------------------------------------- scale checks
def scale_checks(cfg: StackConfig, ingest: Mapping[str, float], prices: dict, a: Mapping[str, float],
                 headroom: float, replicas: float, topo: Topology) -> dict:
    enabled = cfg.tools.owned()
    warnings: list[str] = []
    limit_applies = cfg.target is Target.AWS
    limit = config.S3_MAX_LIFECYCLE_RULES
    rules = {tool: len(lifecycle.plan(cfg, tool).rules) for tool in enabled}
    for tool, count in rules.items():
        if limit_applies and count > limit:
            warnings.append(f"{tool} bucket needs {count} lifecycle rules; S3 refuses more than {limit}")
        elif limit_applies and count >= RULE_WARN_SHARE * limit:
            warnings.append(f"{tool} bucket uses {count} of the {limit} lifecycle rules S3 allows")
    per_tenant = [tool for tool in ("loki", "tempo") if tool in enabled
                  and len(lifecycle.plan(_with_tenants(cfg, 2), tool).rules) > len(lifecycle.plan(_with_tenants(cfg, 1), tool).rules)]
    room = None
    if per_tenant and limit_applies:
        fixed = max(rules[t] - len(cfg.tenants) for t in per_tenant)
        room = limit - fixed
    names = {spec.bucket: config.bucket_name_problem(spec.bucket) or "ok" for spec in enabled.values()}
    warnings += [f"bucket {name}: {problem}" for name, problem in names.items() if problem != "ok"]
    growth = []
    for factor in (1, 2, 5):
        grown = replace(topo, thanos=replace(topo.thanos, spoke_samples_per_s=topo.thanos.spoke_samples_per_s * factor))
        e = estimate(cfg, {k: v * factor for k, v in ingest.items()}, prices, a, headroom, replicas, grown)
        growth.append({"factor": factor, "object_storage": e["total"]["object_storage"], "baseline": e["total"]["baseline"],
                       "saving_ratio": e["total"]["saving_ratio"]})
    tenant_rows = []
    for n in sorted({len(cfg.tenants), 10, 100, 1000}):
        scaled = _with_tenants(cfg, n)
        e = estimate(scaled, ingest, prices, a, headroom, replicas, topo)
        counts = {tool: len(lifecycle.plan(scaled, tool).rules) for tool in ("loki", "tempo") if tool in enabled}
        requests = sum(e["tools"][tool]["cost"]["requests"] for tool in counts)
        tenant_rows.append({"tenants": n, "loki_rules": counts.get("loki"), "tempo_rules": counts.get("tempo"),
                            "loki_tempo_requests": requests, "object_storage": e["total"]["object_storage"],
                            "over_rule_limit": limit_applies and max(counts.values(), default=0) > limit})
    return {"lifecycle_rules": rules, "rule_limit": limit if limit_applies else None, "per_tenant_rules": per_tenant,
            "tenant_room": room, "bucket_names": names, "ingest_growth": growth, "tenants": tenant_rows,
            "warnings": warnings}


def _with_tenants(cfg: StackConfig, n: int) -> StackConfig:
    """The same stack with n tenants (the first ones kept), for what-if rows; not re-validated."""
    current = [t for t in cfg.tenants if t != "fake"] if n > 1 else cfg.tenants[:1]
    tenants = (current + [f"tenant-{i:04d}" for i in range(1, n + 1)])[:n]
    return cfg.model_copy(update={"tenants": tenants})
