"""The report as data (`--json`) and as text."""

from __future__ import annotations

from dataclasses import asdict
from typing import Mapping, Optional

from components.core.config import PROJECT, StackConfig
from tools.cost.facts import ASSUMPTIONS, INGEST_UNITS, MEASURED_ASSUMPTIONS, MEASUREMENT, NOT_MODELLED
from tools.cost.pricing import BucketRules, estimate, scale_checks
from tools.cost.timeline import timeline, tool_retentions
from tools.cost.topology import LokiTopology, TempoTopology, ThanosTopology, Topology


def report(stack: str, cfg: StackConfig, ingest: Mapping[str, float], ingest_from: str, prices: dict,
           a: Mapping[str, float], headroom: float, replicas: float, topo: Topology,
           comparison: Optional[dict] = None) -> dict:
    """Everything the command prints, rounded once: the text form is rendered from this dict."""
    e = estimate(cfg, ingest, prices, a, headroom, replicas, topo)
    if not e["tools"]:
        return _nothing_to_price(stack, cfg, topo)
    scale = scale_checks(cfg, ingest, prices, a, headroom, replicas, topo)
    min_days = {cls: p["min_days"] for cls, p in prices["s3"].items() if "min_days" in p}
    gb_month = {cls: p["gb_month"] for cls, p in prices["s3"].items() if "gb_month" in p}
    tools = {}
    timelines = {}
    warnings = list(scale["warnings"]) + list(topo.notes)
    for name, t in e["tools"].items():
        rules: BucketRules = t["rules"]
        tools[name] = {
            "bucket": t["bucket"],
            "ingest": t["ingest"],
            "gb_per_day": _gb(t["gb_per_day"]),
            "gb_by_class": {cls: _gb(v) for cls, v in sorted(t["gb_by_class"].items())},
            "gb_total": _gb(t["gb_total"]),
            "cost": {k: _money(v) for k, v in t["cost"].items()},
            "requests": [{"what": r["what"], "put_list_per_month": round(r["put_list_per_month"]),
                          "get_per_month": round(r["get_per_month"]), "cost": _money(r["cost"])} for r in t["request_lines"]],
            "baseline": {"gb": _gb(t["baseline"]["gb"]), "cost": _money(t["baseline"]["cost"])},
            "saving_ratio": _ratio(t["saving_ratio"]),
            "lifecycle": {"rules": rules.rule_count, "data_rule": rules.data_rule or None,
                          "transitions": [{"days": d, "storage_class": c} for d, c in rules.transitions],
                          "expire_days": rules.expire_days, "noncurrent_days": rules.noncurrent_days},
            "notes": t["notes"],
        }
        if t["forever"]:
            warnings.append(f"{name}: some data is kept forever; its GB and cost are shown at day {a['forever_days']:g} and keep growing")
        tl = timeline(tool_retentions(cfg, name), rules.transitions, rules.expire_days, rules.noncurrent_days, min_days, gb_month)
        if name == "thanos":
            tl["notes"].append("ages are of each block's newest sample; a 14d block holds data up to 14 days older, "
                               "and compaction rewrites blocks (object age is not data age)")
            early = [d for d, _ in rules.transitions if d < 14 + cfg.tools.thanos.delete_delay_hours / 24]
            if early:
                tl["notes"].append(f"a transition at day {early[0]} also moves blocks compaction will still rewrite and delete "
                                   "(transition fees and minimum-duration charges not counted above)")
        timelines[name] = tl
        warnings += [f"{name}: {p}" for p in tl["problems"]]
    return {
        "stack": stack,
        "target": cfg.target.value,
        "region": cfg.storage.region,
        "currency": prices["currency"],
        "prices": {"file": prices["file"], "provider": prices["provider"], "region": prices["region"],
                   "as_of": str(prices["as_of"]), "source": prices["source"], "overrides": prices["overrides"]},
        "ingest": {key: {"value": ingest[key], "unit": INGEST_UNITS[key]} for key in INGEST_UNITS},
        "ingest_from": ingest_from,
        "stored_gb_per_day": {name: _gb(t["gb_per_day"]) for name, t in e["tools"].items()},
        "topology": {"source": topo.source, **{name: asdict(getattr(topo, name)) for name in ("loki", "tempo", "thanos")}},
        "baseline": {"volume": prices["volume"]["name"], "gb_month": prices["volume"]["gb_month"],
                     "headroom": headroom, "replicas": replicas},
        "tools": tools,
        "account": {"base_month": _money(e["account"]["base_month"]), "included_gb": e["account"]["included_gb"],
                    "included_credit": _money(e["account"]["included_credit"])},
        "total": {"gb": _gb(e["total"]["gb"]), "object_storage": _money(e["total"]["object_storage"]),
                  "baseline_gb": _gb(e["total"]["baseline_gb"]), "baseline": _money(e["total"]["baseline"]),
                  "saving_ratio": _ratio(e["total"]["saving_ratio"])},
        "timeline": timelines,
        "scale": {
            "lifecycle_rules": scale["lifecycle_rules"], "rule_limit": scale["rule_limit"],
            "per_tenant_rules": scale["per_tenant_rules"], "tenant_room": scale["tenant_room"],
            "bucket_names": scale["bucket_names"],
            "ingest_growth": [{"factor": g["factor"], "object_storage": _money(g["object_storage"]),
                               "baseline": _money(g["baseline"]), "saving_ratio": _ratio(g["saving_ratio"])}
                              for g in scale["ingest_growth"]],
            "tenants": [{**row, "loki_tempo_requests": _money(row["loki_tempo_requests"]),
                         "object_storage": _money(row["object_storage"])} for row in scale["tenants"]],
        },
        "warnings": warnings,
        "assumptions": dict(a),
        "measured_assumptions": {key: MEASUREMENT for key in MEASURED_ASSUMPTIONS if a[key] == ASSUMPTIONS[key]},
        "comparison": comparison,
        "not_modelled": list(NOT_MODELLED),
    }


def _nothing_to_price(stack: str, cfg: StackConfig, topo: Topology) -> dict:
    """A stack that owns no bucket (a Thanos spoke with Loki and Tempo off): where its data is priced
    instead, rather than a report of zeros."""
    thanos = cfg.tools.thanos
    hub = thanos.hub if thanos.enabled and not thanos.owns_bucket else None
    warnings = list(topo.notes)
    if hub and hub.split("/")[1:2] == [PROJECT]:
        warnings.append(f"thanos: priced in the hub's report: `make cost STACK={hub.rsplit('/', 1)[-1]}` "
                        f"(this cluster's samples/s: --spoke-metrics {thanos.cluster_label}=N)")
    disabled = [name for name, tool in (("loki", cfg.tools.loki), ("tempo", cfg.tools.tempo), ("thanos", thanos)) if not tool.enabled]
    if disabled:
        warnings.append(f"{', '.join(disabled)}: disabled in this stack")
    return {"stack": stack, "target": cfg.target.value, "region": cfg.storage.region, "tools": {},
            "priced_with": hub, "warnings": warnings}


def _count(value: Optional[int]) -> str:
    """A count, or '-' for a tool the stack does not run."""
    return "-" if value is None else str(value)


def _money(value: float) -> float:
    return round(value, 2) + 0.0


def _gb(value: float) -> float:
    return round(value, 2) + 0.0


def _ratio(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def _figure(value: Optional[float]) -> str:
    if value is None:
        return "no series"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


COLUMNS = ("storage", "requests", "transitions", "minimum_charges", "monitoring", "retrieval", "total")
HEADERS = ("storage", "requests", "transit.", "min-chg", "monitor", "retrieval", "total")


TOPOLOGY_TEXT = {"loki": lambda d: LokiTopology(**d).describe(), "tempo": lambda d: TempoTopology(**d).describe(),
                 "thanos": lambda d: ThanosTopology(**d).describe()}


def as_text(r: dict) -> str:
    if not r["tools"]:
        return "\n".join([f"Storage cost of stack {r['stack']} (target {r['target']}, region {r['region']}): "
                          "it owns no bucket, so there is nothing to price here", *r["warnings"]])
    cur, b, a = r["currency"], r["baseline"], r["assumptions"]
    lines = [
        f"Storage cost of stack {r['stack']} (target {r['target']}, region {r['region']}): steady state, {cur} per month",
        f"prices: {r['prices']['file']} as of {r['prices']['as_of']} (sources listed in the file); "
        f"overrides: {', '.join(f'{k}={v}' for k, v in r['prices']['overrides'].items()) or 'none'}",
        f"ingest ({r['ingest_from']}): " + ", ".join(f"{k} {v['value']:,.6g} {v['unit']}" for k, v in r["ingest"].items()),
        "stored a day (one copy): " + ", ".join(f"{k} {v:.2f} GB" for k, v in r["stored_gb_per_day"].items())
        + f" (loki x{a['loki.stored_ratio']:g}, tempo x{a['tempo.stored_ratio']:g}, thanos {a['thanos.bytes_per_sample']:g} B/sample)",
        f"topology ({r['topology']['source']}):",
        *(f"  {name:<7} {TOPOLOGY_TEXT[name](r['topology'][name])}" for name in r["tools"]),
        f"baseline: the same stored bytes on {b['volume']} at {b['gb_month']:g}/GB-month x headroom {b['headroom']:g} x replicas {b['replicas']:g}",
        "",
        f"{'tool':<7} {'GB stored':>10} " + " ".join(f"{h:>9}" for h in HEADERS) + f" | {'vol GB':>10} {'vol cost':>9} | saving",
    ]
    for name, t in r["tools"].items():
        lines.append(f"{name:<7} {t['gb_total']:>10.2f} " + " ".join(f"{t['cost'][c]:>9.2f}" for c in COLUMNS)
                     + f" | {t['baseline']['gb']:>10.2f} {t['baseline']['cost']:>9.2f} | {_pct(t['saving_ratio'])}")
    acc, tot = r["account"], r["total"]
    if acc["base_month"]:
        lines.append(f"account base fee {acc['base_month']:.2f} includes {acc['included_gb']:g} GB: credit -{acc['included_credit']:.2f}")
    lines.append(f"{'total':<7} {tot['gb']:>10.2f} " + " ".join(" " * 9 for _ in COLUMNS[:-1]) + f" {tot['object_storage']:>9.2f}"
                 + f" | {tot['baseline_gb']:>10.2f} {tot['baseline']:>9.2f} | {_pct(tot['saving_ratio'])}")
    lines += ["", "GB by storage class:"]
    for name, t in r["tools"].items():
        lines.append(f"  {name:<7} " + ", ".join(f"{cls} {gb:.2f}" for cls, gb in t["gb_by_class"].items()))
    lines += ["", "requests per month from each write pattern (PUT/LIST, GET, cost):"]
    for name, t in r["tools"].items():
        for q in t["requests"]:
            lines.append(f"  {name:<7} {q['what']:<58} {q['put_list_per_month']:>12,} {q['get_per_month']:>12,} {q['cost']:>9.2f}")
    lines += ["", "retention timeline (object age in days):"]
    for name, tl in r["timeline"].items():
        lc = r["tools"][name]["lifecycle"]
        rule = lc["data_rule"] or "none on the data (tool retention only)"
        lines.append(f"  {name} (bucket {r['tools'][name]['bucket']}; data rule: {rule})")
        for ev in tl["events"]:
            day = "forever" if ev["day"] is None else f"{ev['day']:.2f}"
            lines.append(f"    day {day:>8}  {ev['event']}")
        lines += [f"    PROBLEM: {p}" for p in tl["problems"]]
        lines += [f"    note: {n}" for n in tl["notes"] + r["tools"][name]["notes"]]
    s = r["scale"]
    limit = f"S3 allows {s['rule_limit']}" if s["rule_limit"] else "the 1,000-rule limit is S3's; this target is not S3"
    lines += ["", "scale checks:",
              "  lifecycle rules per bucket (" + limit + "): " + ", ".join(f"{k} {v}" for k, v in s["lifecycle_rules"].items())]
    if s["per_tenant_rules"]:
        room = f"; room for {s['tenant_room']} tenants" if s["tenant_room"] is not None else ""
        lines.append(f"  one data rule per tenant on: {', '.join(s['per_tenant_rules'])}{room}")
    lines.append("  bucket names: " + ", ".join(f"{k} {v}" for k, v in s["bucket_names"].items()))
    lines.append(f"  ingest growth:  {'factor':>6} {'object storage':>15} {'volumes':>12} {'saving':>8}")
    for g in s["ingest_growth"]:
        lines.append(f"                  {str(g['factor']) + 'x':>6} {g['object_storage']:>15.2f} {g['baseline']:>12.2f} {_pct(g['saving_ratio']):>8}")
    lines.append(f"  tenants (same ingest): {'tenants':>7} {'loki rules':>10} {'tempo rules':>11} {'loki+tempo requests':>19} {'object storage':>15}")
    for row in s["tenants"]:
        flag = "  over the S3 rule limit" if row["over_rule_limit"] else ""
        lines.append(f"                         {row['tenants']:>7} {_count(row['loki_rules']):>10} {_count(row['tempo_rules']):>11} "
                     f"{row['loki_tempo_requests']:>19.2f} {row['object_storage']:>15.2f}{flag}")
    if r["comparison"]:
        lines += ["", f"model next to the stack's own metrics ({r['comparison']['url']}, rates over {r['comparison']['window']}):",
                  f"  {'tool':<7} {'figure':<44} {'model':>14} {'measured':>14}  used"]
        for name, rows in r["comparison"]["tools"].items():
            for row in rows:
                lines.append(f"  {name:<7} {row['figure']:<44} {_figure(row['model']):>14} {_figure(row['measured']):>14}  {row['used']}")
        lines += [f"  note: {n}" for n in r["comparison"]["notes"]]
    lines += [""] + [f"WARNING: {w}" for w in r["warnings"]]
    measured = r["measured_assumptions"]
    lines.append("assumptions: " + ", ".join(f"{k}={v:g}" + (" (measured)" if k in measured else "") for k, v in r["assumptions"].items()))
    if measured:
        lines.append(f"measured: {MEASUREMENT}")
    lines.append("not modelled: " + "; ".join(r["not_modelled"]))
    return "\n".join(lines)
