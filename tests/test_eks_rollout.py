"""A full rollout on EKS loses nothing acknowledged, and no tool reports usage, on any target.

Expected values come from the tools' and charts' defaults at the pinned tags (versions.ChartFacts,
grafana/tempo v2.10.8 modules/ingester), not from the program."""

from __future__ import annotations

import re

import yaml

from components.core import versions
from tests.test_docker import _service_config, containers, uploaded
from tests.test_eks import chart

TEMPO_DEFAULTS = versions.DEFAULT_PINS["tempo-chart"].chart_facts.defaults
LOKI_DEFAULTS = versions.DEFAULT_PINS["loki-chart"].chart_facts.defaults
# Tempo uploads its head block before exiting only when told to; 300 s is what both charts allow a
# stopping ingester by default, and the program must never give it less.
MIN_GRACE = 300


def test_tempo_ingesters_upload_everything_before_they_stop(plan):
    ingester = chart(plan("staging"), "tempo").inputs["values"]["ingester"]
    # The chart (and Tempo) default is off: without this each zone's restart drops its WAL.
    assert TEMPO_DEFAULTS["ingester.config.flush_all_on_shutdown"] is False
    assert ingester["config"]["flush_all_on_shutdown"] is True
    assert ingester["terminationGracePeriodSeconds"] >= MIN_GRACE


def test_loki_ingesters_flush_before_they_stop_whatever_the_chart_defaults(plan):
    values = chart(plan("staging"), "loki").inputs["values"]
    assert LOKI_DEFAULTS["loki.ingester.wal.flush_on_shutdown"] is True
    assert values["loki"]["structuredConfig"]["ingester"]["wal"]["flush_on_shutdown"] is True
    assert values["ingester"]["terminationGracePeriodSeconds"] >= MIN_GRACE


def test_no_tool_reports_usage_on_any_target(plan):
    # EKS: the tempo-distributed chart reports unless reportingEnabled is false (its default is true).
    staging = plan("staging")
    assert TEMPO_DEFAULTS["reportingEnabled"] is True
    assert chart(staging, "tempo").inputs["values"]["reportingEnabled"] is False
    assert chart(staging, "loki").inputs["values"]["loki"]["structuredConfig"]["analytics"] == {"reporting_enabled": False}
    # Docker: the rendered config files.
    local = containers(plan("local"))
    assert yaml.safe_load(uploaded(local["tempo"], "/etc/tempo/config.yaml"))["usage_report"] == {"reporting_enabled": False}
    assert yaml.safe_load(uploaded(local["loki"], "/etc/loki/config.yaml"))["analytics"] == {"reporting_enabled": False}
    prod = plan("prod")
    assert _service_config(prod, "tempo", "/etc/tempo/config.yaml")["usage_report"] == {"reporting_enabled": False}
    assert _service_config(prod, "loki", "/etc/loki/config.yaml")["analytics"] == {"reporting_enabled": False}


def test_prometheus_replicas_restart_far_enough_apart_that_one_always_has_the_hours(plan):
    spec = chart(plan("staging"), "kps").inputs["values"]["prometheus"]["prometheusSpec"]
    # Prometheus cuts the oldest 2 hours into a block once its head spans 3 hours (tsdb/head.go
    # `compactable`: 1.5 x the 2-hour block range): the next replica may restart only after the
    # first has had that long, plus time for the sidecar's upload.
    assert spec["replicas"] == 2 and spec["minReadySeconds"] > 3 * 3600


def test_prometheus_waits_between_replicas_exactly_what_docs_aws_eks_states(plan):
    from tests import documents

    # The 3-hour head plus half an hour for the 2-hour block's cut and upload: what the rollout
    # table promises operators (a longer wait leaves KubeStatefulSetUpdateNotRolledOut firing for
    # longer than they were told; a shorter one may restart the second replica before the first's
    # block is in the bucket).
    (stated,) = re.findall(r"`minReadySeconds` \((\d+) h (\d+) min\)", documents.read("docs/aws-eks.md"))
    hours, minutes = map(int, stated)
    assert (hours, minutes) == (3, 30)
    spec = chart(plan("staging"), "kps").inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["minReadySeconds"] == (hours * 60 + minutes) * 60 == 12_600


def test_the_ingesters_grace_period_is_the_one_docs_aws_eks_states(plan):
    from tests import documents

    text = documents.read("docs/aws-eks.md")
    stated = {int(n) for n in re.findall(r"terminationGracePeriodSeconds: (\d+)", text)}
    values = {r: chart(plan("staging"), r).inputs["values"]["ingester"]["terminationGracePeriodSeconds"] for r in ("loki", "tempo")}
    assert stated == {300} and values == {"loki": 300, "tempo": 300}
