"""Price files (tools/cost/prices/*.yaml) and the assumption overrides given on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import yaml

from components.core.config import StackConfig, Target
from tools.cost.facts import ASSUMPTIONS, GIB, MAY_BE_ZERO, PRICES_DIR, SECONDS_PER_DAY, CostError


# ---------------------------------------------------------------- prices
def price_file_for(cfg: StackConfig) -> str:
    if cfg.target is Target.LOCAL:
        return "local"
    if cfg.target is Target.AWS:
        return f"aws-{cfg.storage.region}"
    return f"hetzner-{cfg.storage.region}"


def load_prices(name: str, overrides: Mapping[str, str] = {}) -> dict:
    """The price file `name` (tools/cost/prices/<name>.yaml, or a path) with dotted-key overrides."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRICES_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PRICES_DIR.glob("*.yaml")))
        raise CostError(f"no price file {path}; add one or pass --prices (known: {known})")
    prices = yaml.safe_load(path.read_text())
    for key in ("provider", "region", "currency", "as_of", "source", "s3", "volume", "account"):
        if key not in prices:
            raise CostError(f"price file {path} has no '{key}'")
    if "STANDARD" not in prices["s3"]:
        raise CostError(f"price file {path} has no s3.STANDARD")
    for key, value in overrides.items():
        node = prices
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), (int, float)) or isinstance(node.get(leaf), bool):
            raise CostError(f"--price {key}: {path.name} has no such price (keys look like s3.STANDARD.gb_month)")
        node[leaf] = parse_number(f"--price {key}", value)
    prices["file"] = str(path.relative_to(PRICES_DIR.parents[2])) if path.is_relative_to(PRICES_DIR.parents[2]) else str(path)
    prices["overrides"] = dict(overrides)
    return prices


def class_price(prices: dict, cls: str) -> dict:
    try:
        return prices["s3"][cls]
    except KeyError:
        raise CostError(f"price file {prices['file']} has no s3.{cls} (the bucket rules move data there)") from None


def parse_number(what: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise CostError(f"{what}: {value!r} is not a number") from None


def assumptions(overrides: Mapping[str, str] = {}) -> dict[str, float]:
    a = dict(ASSUMPTIONS)
    for key, value in overrides.items():
        if key not in a:
            raise CostError(f"--assume {key}: unknown (known: {', '.join(sorted(a))})")
        a[key] = parse_number(f"--assume {key}", value)
        if a[key] < 0 or (a[key] == 0 and key not in MAY_BE_ZERO):
            raise CostError(f"--assume {key}: must be {'zero or more' if key in MAY_BE_ZERO else 'more than zero'}")
    return a


def stored_gb_per_day(tool: str, ingest: float, a: Mapping[str, float]) -> float:
    """GB a day in the bucket (one copy, after the tool's compression) for ingest in INGEST_UNITS."""
    if tool == "loki":
        return ingest * a["loki.stored_ratio"]
    if tool == "tempo":
        return ingest * a["tempo.stored_ratio"]
    return ingest * SECONDS_PER_DAY * a["thanos.bytes_per_sample"] / GIB
