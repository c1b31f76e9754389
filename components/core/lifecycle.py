"""Bucket lifecycle rules derived from a tool's retention: pure data, shared by every backend.

Where rules may point matters more than what they do (see docs/configuration.md, "Lifecycle rules"):
- Loki and Tempo keep seed files and indexes next to their data; expiring the whole bucket breaks
  them, so data rules are scoped to each tenant's prefix.
- Thanos rewrites blocks during compaction (object age is not data age); its rule covers its
  prefix and sits above the longest resolution retention plus the delete delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from components.core.config import StackConfig, Target

ABORT_MULTIPART_DAYS = 1


@dataclass(frozen=True)
class Rule:
    id: str
    prefix: str
    transitions: tuple[tuple[int, str], ...] = ()
    expire_days: Optional[int] = None
    abort_multipart_days: Optional[int] = None
    noncurrent_days: Optional[int] = None
    # A delete marker whose older versions have all expired: removing it is free and keeps
    # LIST requests from wading through markers that hide nothing.
    expired_delete_markers: bool = False

    def describe(self) -> str:
        """The rule in one line, for people reading the stack outputs."""
        where = f"objects under {self.prefix!r}" if self.prefix else "the whole bucket"
        actions = [f"move to {storage_class} after {days}d" for days, storage_class in self.transitions]
        if self.expire_days:
            actions.append(f"expire after {self.expire_days}d (safety net)")
        if self.abort_multipart_days:
            actions.append(f"abort incomplete multipart uploads after {self.abort_multipart_days}d")
        if self.noncurrent_days:
            actions.append(f"delete noncurrent versions {self.noncurrent_days}d after they are replaced or deleted")
        if self.expired_delete_markers:
            actions.append("remove delete markers that no longer hide a version")
        return f"rule {self.id} on {where}: {', '.join(actions)}."


@dataclass(frozen=True)
class LifecyclePlan:
    """What the bucket does on its own, and why, for one tool."""

    rules: tuple[Rule, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> tuple[str, ...]:
        """Everything that removes or moves the tool's data: the notes, then every rule."""
        return (*self.notes, *(rule.describe() for rule in self.rules))


# Where each tool writes a single tenant's data when multi-tenancy is off.
SINGLE_TENANT_ID = {"loki": "fake", "tempo": "single-tenant"}


def tenant_ids(cfg: StackConfig, tool: str) -> list[str]:
    return list(cfg.tenants) if cfg.multi_tenant else [SINGLE_TENANT_ID[tool]]


def data_prefixes(cfg: StackConfig, tool: str) -> list[str]:
    """Prefixes that hold only the tool's expirable data."""
    tool_cfg = cfg.tools.enabled()[tool]
    if tool in SINGLE_TENANT_ID:
        return [f"{tool_cfg.prefix}{tenant}/" for tenant in tenant_ids(cfg, tool)]
    return [tool_cfg.prefix]


def plan(cfg: StackConfig, tool: str) -> LifecyclePlan:
    tool_cfg = cfg.tools.enabled()[tool]
    s = cfg.storage
    notes = [f"{tool} deletes data itself: {tool_cfg.retention_text()}."]
    rules: list[Rule] = []
    if cfg.target is Target.AWS:
        # Cost hygiene, not retention: always on, whole bucket (Tempo's docs recommend it).
        rules.append(Rule("abort-incomplete-multipart", "", abort_multipart_days=ABORT_MULTIPART_DAYS))
    elif s.bucket_lifecycle:
        notes.append("Incomplete multipart uploads: the S3-compatible server expires stale uploads itself.")
    if not s.bucket_lifecycle:
        notes.append("Bucket lifecycle disabled (storage.bucketLifecycle=false): the tool's own retention is the only one.")
        return LifecyclePlan(tuple(rules), tuple(notes))
    if s.versioning:
        # On AWS in the same rule: S3 takes ExpiredObjectDeleteMarker next to noncurrent expiration,
        # just not next to Expiration days.
        rules.append(Rule("expire-noncurrent-versions", "", noncurrent_days=s.noncurrent_version_days,
                          expired_delete_markers=cfg.target is Target.AWS))
    transitions = tuple((t.days, t.storage_class) for t in tool_cfg.transitions)
    if transitions or tool_cfg.expire_after_days:
        for prefix in data_prefixes(cfg, tool):
            label = prefix.rstrip("/").replace("/", "-") or "all"
            rules.append(Rule(f"{tool}-data-{label}", prefix, transitions, tool_cfg.expire_after_days))
    else:
        notes.append("No bucket expiration: only the tool deletes data.")
    return LifecyclePlan(tuple(rules), tuple(notes))
