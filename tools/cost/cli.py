"""The command line of `python -m tools.cost` (the package docstring says what it reports)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Optional

from components.core import config, loading
from components.core.config import StackConfig
import tools.cost
from tools import engine
from tools.cost.facts import DEFAULT_HEADROOM, DEFAULT_INGEST, DEFAULT_REPLICAS, FALLBACK_INGEST, CostError
from tools.cost.measure import MEASURED_NOTES, apply_measurement, compare, measure
from tools.cost.prices import assumptions, load_prices, parse_number, price_file_for
from tools.cost.pricing import estimate
from tools.cost.report import as_text, report
from tools.cost.topology import Topology, stack_topology


# ---------------------------------------------------------------- command line
def _pairs(text: str, what: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise CostError(f"{what}: {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def with_spokes(topo: Topology, cfg: StackConfig, text: Optional[str], own_metrics: float) -> Topology:
    """A Thanos hub's topology with the spokes it lists (tools.thanos.spokes) uploading into its
    bucket; a spoke's with a note that its metrics are costed with its hub."""
    thanos = cfg.tools.thanos
    if not thanos.enabled:
        return topo
    if not thanos.owns_bucket:
        cross = ("; its uploads cross regions (tools.thanos.crossRegion), and that inter-region transfer is not modelled"
                 if thanos.cross_region else "")
        return replace(topo, notes=topo.notes + (f"thanos: this stack is a spoke; its metrics are stored and costed in the bucket of its hub "
                                                 f"{thanos.hub} (its --spoke-metrics){cross}",))
    labels = [s.cluster_label for s in thanos.spokes]
    given = {k: parse_number(f"--spoke-metrics {k}", v) for k, v in _pairs(text or "", "--spoke-metrics").items()}
    unknown = sorted(set(given) - set(labels))
    if unknown:
        raise CostError(f"--spoke-metrics {unknown[0]}: not a spoke of this hub (tools.thanos.spokes: {', '.join(labels) or 'none'})")
    if any(v < 0 for v in given.values()):
        raise CostError("--spoke-metrics: samples/s must not be negative")
    if not labels:
        return topo
    rates = {label: given.get(label, own_metrics) for label in labels}
    assumed = [label for label in labels if label not in given]
    shown = ", ".join(f"{label} {rate:,.0f}" for label, rate in rates.items())
    note = (f"thanos: {len(labels)} spoke(s) upload into this bucket ({shown} samples/s"
            + (f"; {', '.join(assumed)} assumed like this cluster, set with --spoke-metrics LABEL=N" if assumed else "")
            + "); its one compactor compacts every cluster's blocks")
    return replace(topo, thanos=replace(topo.thanos, spokes=len(labels), spoke_samples_per_s=sum(rates.values())), notes=topo.notes + (note,))


def parse_ingest(text: Optional[str], stack: str) -> tuple[dict[str, float], str, set[str]]:
    """Ingest per kind in INGEST_UNITS, where it came from, and the kinds given explicitly."""
    ingest = dict(DEFAULT_INGEST.get(stack, FALLBACK_INGEST))
    if not text:
        return ingest, "stack default; set with --ingest", set()
    given = _pairs(text, "--ingest")
    for key, value in given.items():
        if key not in ingest:
            raise CostError(f"--ingest {key}: use logs (GB/day raw), traces (GB/day OTLP) and metrics (samples/s)")
        ingest[key] = parse_number(f"--ingest {key}", value)
        if ingest[key] < 0:
            raise CostError(f"--ingest {key}: must not be negative")
    return ingest, "--ingest", set(given)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cost", description=tools.cost.__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, action="append",
                        help=f"one of: {', '.join(engine.available_stacks())} (repeat it for several)")
    parser.add_argument("--ingest", help="logs=GB/day raw, traces=GB/day OTLP, metrics=samples/s, e.g. logs=75,traces=35,metrics=30000 "
                                         "(default: per stack)")
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="volume size over data (default 1.3)")
    parser.add_argument("--replicas", type=float, default=DEFAULT_REPLICAS, help="volume copies (default 3)")
    parser.add_argument("--prices", help="price file name in tools/cost/prices (e.g. aws-us-east-1) or a path; default: the stack's")
    parser.add_argument("--price", action="append", default=[], metavar="KEY=VALUE", help="override a price, e.g. s3.STANDARD.gb_month=0.02")
    parser.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE", help="override an assumption, e.g. loki.streams=2000")
    parser.add_argument("--from-prometheus", metavar="URL", help="read ingest, compression and request rates from the stack's Prometheus")
    parser.add_argument("--window", default="1d", help="range the rates are taken over with --from-prometheus (default 1d)")
    parser.add_argument("--spoke-metrics", metavar="LABEL=N,...",
                        help="a Thanos hub: samples/s of each spoke by cluster label (default: like this cluster)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    several = len(args.stack) > 1
    results = []
    for stack in args.stack:
        if several and not args.json:
            print(f"== {stack}", flush=True)
        try:
            result = stack_report(stack, args)
        except (FileNotFoundError, config.ConfigError, CostError) as error:
            print(f"error: {error}", file=sys.stderr)
            if several and args.json:
                print(json.dumps(results, indent=2))
            return 2
        results.append(result)
        if not args.json:
            print(as_text(result), flush=True)
    if args.json:
        # One JSON document: the report of one stack, or the list of the stacks' reports.
        print(json.dumps(results if several else results[0], indent=2))
    return 0


def stack_report(stack: str, args: argparse.Namespace) -> dict:
    """The report of one stack for the parsed command line; raises on bad config or arguments."""
    raw, secret_keys = engine.stack_config(stack)
    cfg = loading.load(stack, raw, set(secret_keys))
    ingest, ingest_from, given = parse_ingest(args.ingest, stack)
    prices = load_prices(args.prices or price_file_for(cfg), {k: v for p in args.price for k, v in _pairs(p, "--price").items()})
    assumed = {k: v for p in args.assume for k, v in _pairs(p, "--assume").items()}
    a = assumptions(assumed)
    if args.headroom < 1 or args.replicas < 1:
        raise CostError("--headroom and --replicas must be at least 1")
    topo = with_spokes(stack_topology(stack, cfg), cfg, args.spoke_metrics, ingest["metrics"])
    comparison = None
    if args.from_prometheus:
        m = measure(args.from_prometheus, args.window, topo)
        given |= set(assumed)
        ingest, a, before = apply_measurement(m, ingest, a, given)
        ingest_from = f"measured by {args.from_prometheus} over {args.window}; model inputs replaced where the metrics exist"
        e = estimate(cfg, ingest, prices, a, args.headroom, args.replicas, topo)
        comparison = {"url": args.from_prometheus, "window": args.window, "tools": compare(m, before, ingest, a, given, e),
                      "notes": [note for tool, note in MEASURED_NOTES.items() if tool in e["tools"]]}
    return report(stack, cfg, ingest, ingest_from, prices, a, args.headroom, args.replicas, topo, comparison)
