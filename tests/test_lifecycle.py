"""Bucket lifecycle rules derived from each tool's retention (components/core/lifecycle.py), without
mocks: which rules exist, where they point, and how the stack outputs describe them."""

from __future__ import annotations

import json

import pytest

from components.core import config, lifecycle, loading

HETZNER_SECRETS = {"obs-storage:hetznerAccessKey", "obs-storage:hetznerSecretKey"}


def cfg_of(target: str = "aws", storage: dict | None = None, tenants: list[str] | None = None, **tools: dict) -> config.StackConfig:
    fields = {"loki": {"bucket": "acme-loki"}, "tempo": {"bucket": "acme-tempo"}, "thanos": {"bucket": "acme-thanos"}}
    for tool, extra in tools.items():
        fields[tool] = {**fields[tool], **extra}
    raw = {"obs-storage:target": target, "obs-storage:tools": json.dumps(fields)}
    secret: set[str] = set()
    if target == "aws":
        raw["obs-storage:aws"] = json.dumps({"clusterName": "stg"})
        storage = {"region": "ap-northeast-2", **(storage or {})}
    if target == "hetzner":
        raw["obs-storage:hetzner"] = json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]})
        raw.update(dict.fromkeys(HETZNER_SECRETS, "x"))
        secret = set(HETZNER_SECRETS)
    raw["obs-storage:storage"] = json.dumps(storage or {})
    if tenants is not None:
        raw["obs-storage:tenants"] = json.dumps(tenants)
    return loading.load("staging" if target == "aws" else target, raw, secret)


def by_id(plan: lifecycle.LifecyclePlan) -> dict[str, lifecycle.Rule]:
    return {rule.id: rule for rule in plan.rules}


# ---------------------------------------------------------------- which rules, where
def test_aws_bucket_without_bucket_rules_aborts_multipart_and_expires_old_versions():
    plan = lifecycle.plan(cfg_of(), "loki")
    assert plan.rules == (
        # Tempo's docs recommend aborting incomplete multipart uploads after one day, bucket-wide.
        lifecycle.Rule("abort-incomplete-multipart", "", abort_multipart_days=1),
        # storage.noncurrentVersionDays defaults to 7; on AWS the same rule drops orphan delete markers.
        lifecycle.Rule("expire-noncurrent-versions", "", noncurrent_days=7, expired_delete_markers=True),
    )
    assert plan.notes == ("loki deletes data itself: retention 31d + 2h delete delay.", "No bucket expiration: only the tool deletes data.")


def test_loki_and_tempo_rules_are_scoped_to_their_single_tenant_prefix():
    transitions = [{"days": 30, "storageClass": "STANDARD_IA"}]
    cfg = cfg_of(loki={"expireAfterDays": 40, "transitions": transitions}, tempo={"expireAfterDays": 20})
    loki_rule = by_id(lifecycle.plan(cfg, "loki"))["loki-data-fake"]
    assert loki_rule == lifecycle.Rule("loki-data-fake", "fake/", ((30, "STANDARD_IA"),), 40)
    # Tempo writes a single tenant's blocks under "single-tenant/" (its default tenant id).
    tempo_rule = by_id(lifecycle.plan(cfg, "tempo"))["tempo-data-single-tenant"]
    assert (tempo_rule.prefix, tempo_rule.transitions, tempo_rule.expire_days) == ("single-tenant/", (), 20)


def test_each_tenant_gets_its_own_rule_under_the_tool_prefix():
    cfg = cfg_of(tenants=["team-a", "team-b"], loki={"expireAfterDays": 40}, tempo={"prefix": "traces/", "expireAfterDays": 20})
    assert lifecycle.data_prefixes(cfg, "loki") == ["team-a/", "team-b/"]
    assert lifecycle.tenant_ids(cfg, "tempo") == ["team-a", "team-b"]
    rules = [r for r in lifecycle.plan(cfg, "tempo").rules if r.expire_days]
    assert [(r.id, r.prefix) for r in rules] == [("tempo-data-traces-team-a", "traces/team-a/"), ("tempo-data-traces-team-b", "traces/team-b/")]


def test_thanos_rule_covers_its_prefix_or_the_whole_bucket():
    whole = by_id(lifecycle.plan(cfg_of(thanos={"expireAfterDays": 400}), "thanos"))
    assert whole["thanos-data-all"].prefix == "" and whole["thanos-data-all"].expire_days == 400
    scoped = by_id(lifecycle.plan(cfg_of(thanos={"prefix": "metrics/", "expireAfterDays": 400}), "thanos"))
    assert scoped["thanos-data-metrics"].prefix == "metrics/"
    assert lifecycle.data_prefixes(cfg_of(thanos={"prefix": "metrics/"}), "thanos") == ["metrics/"]


def test_noncurrent_versions_follow_storage_settings():
    rules = by_id(lifecycle.plan(cfg_of(storage={"noncurrentVersionDays": 30}), "tempo"))
    assert rules["expire-noncurrent-versions"].noncurrent_days == 30
    assert "expire-noncurrent-versions" not in by_id(lifecycle.plan(cfg_of(storage={"versioning": False}), "tempo"))


def test_minio_expires_multipart_uploads_itself_and_has_no_delete_marker_rule():
    plan = lifecycle.plan(cfg_of("local", loki={"retentionDays": 7, "expireAfterDays": 8}), "loki")
    assert [r.id for r in plan.rules] == ["expire-noncurrent-versions", "loki-data-fake"]
    assert by_id(plan)["expire-noncurrent-versions"].expired_delete_markers is False
    assert "Incomplete multipart uploads: the S3-compatible server expires stale uploads itself." in plan.notes


def test_bucket_lifecycle_off_leaves_only_the_tools_retention():
    aws = lifecycle.plan(cfg_of(storage={"bucketLifecycle": False}), "thanos")
    # Aborting stale uploads deletes no data: AWS buckets keep it.
    assert [r.id for r in aws.rules] == ["abort-incomplete-multipart"]
    assert aws.notes[-1] == "Bucket lifecycle disabled (storage.bucketLifecycle=false): the tool's own retention is the only one."
    hetzner = lifecycle.plan(cfg_of("hetzner", storage={"bucketLifecycle": False}), "loki")
    assert hetzner.rules == ()
    assert hetzner.notes == ("loki deletes data itself: retention 31d + 2h delete delay.",
                             "Bucket lifecycle disabled (storage.bucketLifecycle=false): the tool's own retention is the only one.")


# ---------------------------------------------------------------- what people read
def test_rules_describe_themselves_in_one_line():
    assert lifecycle.Rule("abort-incomplete-multipart", "", abort_multipart_days=1).describe() == (
        "rule abort-incomplete-multipart on the whole bucket: abort incomplete multipart uploads after 1d.")
    assert lifecycle.Rule("expire-noncurrent-versions", "", noncurrent_days=7, expired_delete_markers=True).describe() == (
        "rule expire-noncurrent-versions on the whole bucket: delete noncurrent versions 7d after they are replaced or deleted, "
        "remove delete markers that no longer hide a version.")
    assert lifecycle.Rule("loki-data-fake", "fake/", ((30, "STANDARD_IA"), (90, "GLACIER_IR")), 400).describe() == (
        "rule loki-data-fake on objects under 'fake/': move to STANDARD_IA after 30d, move to GLACIER_IR after 90d, "
        "expire after 400d (safety net).")


def test_plan_describes_notes_first_then_every_rule():
    plan = lifecycle.plan(cfg_of(thanos={"expireAfterDays": 400}), "thanos")
    lines = plan.describe()
    assert lines[0] == "thanos deletes data itself: retention raw 30d / 5m 90d / 1h 365d + 48h delete delay (0 = forever)."
    assert lines[1:] == tuple(rule.describe() for rule in plan.rules) and len(plan.rules) == 3


def test_a_plan_cannot_be_changed_by_a_backend_that_reads_it():
    # The same plan feeds the bucket's rules and the stack outputs that describe them.
    import dataclasses

    plan = lifecycle.plan(cfg_of(loki={"expireAfterDays": 40}), "loki")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rules[0].expire_days = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.notes = ()
