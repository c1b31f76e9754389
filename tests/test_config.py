"""The config model, without mocks: every bad-config case fails with one actionable line."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from pydantic.alias_generators import to_snake

from components.core import config, loading, versions
from tests.conftest import aws_config
from tools import engine

ROOT = Path(__file__).resolve().parent.parent


def err_key(err: config.ConfigError) -> str:
    return err.key if ":" in err.key else f"obs-storage:{err.key}"


def error_of(raw: dict[str, str], secret: frozenset[str] = frozenset(), stack: str = "staging") -> config.ConfigError:
    with pytest.raises(config.ConfigError) as info:
        loading.load(stack, raw, set(secret))
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"stack '{stack}': {err_key(info.value)} = "), message
    assert "Fix: " in message, message
    return info.value


def test_valid_aws_config_resolves_target_defaults():
    cfg = loading.load("staging", aws_config(), set())
    assert cfg.storage.endpoint == "s3.ap-northeast-2.amazonaws.com"
    assert cfg.storage.path_style is False and cfg.storage.tls is True
    assert cfg.storage.protect is True


@pytest.mark.parametrize(
    "bucket",
    ["Acme-Loki", "ab", "a" * 64, "acme.loki", "-acme", "acme-", "192.168.1.10", "xn--acme", "acme-s3alias", "acme_loki"],
)
def test_invalid_bucket_name(bucket):
    err = error_of(aws_config(loki={"bucket": bucket}))
    assert err.key == "tools.loki.bucket" and err.value == bucket


def test_expiration_must_exceed_retention_plus_delete_delay():
    # 31 days of retention + 2h delete delay: 31 days of expiration would delete served chunks.
    err = error_of(aws_config(loki={"bucket": "acme-loki", "retentionDays": 31, "expireAfterDays": 31}))
    assert err.key == "tools.loki.expireAfterDays" and err.value == 31
    assert "at least 32" in err.fix
    loading.load("staging", aws_config(loki={"bucket": "acme-loki", "retentionDays": 31, "expireAfterDays": 32}), set())


def test_thanos_expiration_counts_longest_resolution_and_delete_delay():
    fields = {"bucket": "acme-thanos", "retention": {"rawDays": 30, "fiveMinuteDays": 90, "oneHourDays": 365}}
    err = error_of(aws_config(thanos={**fields, "expireAfterDays": 367}))
    assert err.key == "tools.thanos.expireAfterDays" and "at least 368" in err.fix
    loading.load("staging", aws_config(thanos={**fields, "expireAfterDays": 368}), set())


# thanos-io/thanos v0.42.4 cmd/thanos/compact.go: with downsampling on, the compactor refuses to
# start with raw retention under 40 hours or 5m retention under 10 days (0 = forever is accepted).
@pytest.mark.parametrize("retention,key,least", [
    ({"rawDays": 1}, "rawDays", 2),
    ({"fiveMinuteDays": 9}, "fiveMinuteDays", 10),
    ({"rawDays": 1, "fiveMinuteDays": 3}, "rawDays", 2),
    ({"fiveMinuteDays": 3, "oneHourDays": 30}, "fiveMinuteDays", 10),
])
def test_thanos_retention_the_compactor_refuses_is_refused(retention, key, least):
    err = error_of(aws_config(thanos={"bucket": "acme-thanos", "retention": retention}))
    assert err.key == f"tools.thanos.retention.{key}" and err.value == retention[key]
    assert "refuses to start" in err.problem and f"at least {least}, or to 0" in err.fix


@pytest.mark.parametrize("retention", [
    {"rawDays": 2, "fiveMinuteDays": 10, "oneHourDays": 10},
    {"rawDays": 0, "fiveMinuteDays": 0, "oneHourDays": 0},
    {"rawDays": 2, "fiveMinuteDays": 0, "oneHourDays": 1},
])
def test_thanos_retention_the_compactor_accepts(retention):
    cfg = loading.load("staging", aws_config(thanos={"bucket": "acme-thanos", "retention": retention}), set())
    assert cfg.tools.thanos.retention.model_dump(by_alias=True) == retention


def _with_region(region: str) -> dict[str, str]:
    raw = aws_config()
    raw["obs-storage:storage"] = json.dumps({"region": region})
    return raw


@pytest.mark.parametrize("region,nearest", [("ap-norteast-2", "ap-northeast-2"), ("us-east1", "us-east-1"), ("mars-1", None)])
def test_an_aws_region_botocore_does_not_know_is_refused(region, nearest):
    err = error_of(_with_region(region))
    assert err.key == "storage.region" and err.value == region
    assert "is not a region where AWS offers S3 and EKS" in err.problem
    assert err.fix == f"use {nearest} (the nearest name)" if nearest else "us-west-2" in err.fix and "ap-northeast-2" in err.fix


@pytest.mark.parametrize("region", ["ap-northeast-2", "us-east-1", "us-gov-west-1", "cn-north-1"])
def test_aws_regions_of_every_partition_are_accepted(region):
    assert loading.load("staging", _with_region(region), set()).storage.region == region


def test_a_region_without_one_of_the_services_names_that_service(monkeypatch):
    regions = {"s3": frozenset({"xx-east-1", "xx-west-1"}), "eks": frozenset({"xx-west-1"})}
    monkeypatch.setattr(config, "aws_regions", regions.__getitem__)
    err = error_of(_with_region("xx-east-1"))
    assert "offers EKS (" in err.problem and err.fix == "use xx-west-1 (the nearest name)"


def test_thanos_expiration_refused_when_a_resolution_is_kept_forever():
    fields = {"bucket": "acme-thanos", "retention": {"rawDays": 30, "fiveMinuteDays": 90, "oneHourDays": 0}}
    err = error_of(aws_config(thanos={**fields, "expireAfterDays": 5000}))
    assert "forever" in str(err)


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_naive_glacier_rule_is_impossible_for_served_data(storage_class):
    # The classic "30d -> Glacier, 400d -> delete" rule on data the tool still serves.
    fields = {"bucket": "acme-loki", "retentionDays": 365, "transitions": [{"days": 30, "storageClass": storage_class}], "expireAfterDays": 400}
    err = error_of(aws_config(loki=fields))
    assert err.key == "tools.loki.transitions[0]"
    assert "cannot be read without a restore" in err.problem
    assert "GLACIER_IR" in err.fix


def test_readable_transition_is_accepted():
    # Data Loki still serves (365 days) may move to classes a querier reads synchronously.
    fields = {"bucket": "acme-loki", "retentionDays": 365, "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 90, "storageClass": "GLACIER_IR"}], "expireAfterDays": 400}
    loki = loading.load("staging", aws_config(loki=fields), set()).tools.loki
    assert [(t.days, t.storage_class) for t in loki.transitions] == [(30, "STANDARD_IA"), (90, "GLACIER_IR")]
    assert loki.expire_after_days == 400 and loki.served_hours() == 365 * 24 + 2


def test_standard_ia_needs_thirty_days():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 7, "storageClass": "STANDARD_IA"}]}))
    assert err.key == "tools.loki.transitions[0]" and "30" in err.fix


def test_transitions_unsupported_on_hetzner():
    raw = aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]})
    raw.update({
        "obs-storage:target": "hetzner",
        "obs-storage:storage": json.dumps({}),
        "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]}),
        "obs-storage:hetznerAccessKey": "k",
        "obs-storage:hetznerSecretKey": "s",
    })
    err = error_of(raw, frozenset({"obs-storage:hetznerAccessKey", "obs-storage:hetznerSecretKey"}), stack="prod")
    assert err.key == "tools.loki.transitions" and "hetzner" in err.problem


def test_tags_unsupported_on_hetzner():
    raw = aws_config()
    raw.update({
        "obs-storage:target": "hetzner",
        "obs-storage:storage": json.dumps({"tags": {"team": "obs"}}),
        "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]}),
        "obs-storage:hetznerAccessKey": "k",
        "obs-storage:hetznerSecretKey": "s",
    })
    err = error_of(raw, frozenset({"obs-storage:hetznerAccessKey", "obs-storage:hetznerSecretKey"}), stack="prod")
    assert err.key == "storage.tags"


def test_sse_kms_unsupported_on_minio():
    raw = aws_config()
    raw["obs-storage:target"] = "local"
    raw["obs-storage:storage"] = json.dumps({"kmsKeyArn": "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"})
    err = error_of(raw, stack="local")
    assert err.key == "storage.kmsKeyArn" and "local" in err.problem


def test_missing_required_secret():
    raw = aws_config()
    raw.update({"obs-storage:target": "hetzner", "obs-storage:storage": "{}", "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]})})
    err = error_of(raw, stack="prod")
    assert err.key == "hetznerAccessKey" and "--secret" in err.fix


def test_credential_in_plain_text_is_refused_without_echoing_it():
    raw = aws_config()
    raw.update({"obs-storage:target": "hetzner", "obs-storage:storage": "{}", "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]}),
                "obs-storage:hetznerAccessKey": "AKIAPLAINTEXT", "obs-storage:hetznerSecretKey": "s"})
    err = error_of(raw, frozenset({"obs-storage:hetznerSecretKey"}), stack="prod")
    assert err.key == "hetznerAccessKey" and "AKIAPLAINTEXT" not in str(err)


@pytest.mark.parametrize(
    "key,value,where",
    [
        ("obs-storage:retentionDays", "7", "retentionDays"),
        ("aws:region", "us-east-1", "aws:region"),
    ],
)
def test_unknown_top_level_key(key, value, where):
    raw = aws_config()
    raw[key] = value
    err = error_of(raw)
    assert err.key == where


def test_unknown_nested_key():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "retentionDayz": 3}))
    assert err.key == "tools.loki.retentionDayz" and "unknown key" in err.problem


@pytest.mark.parametrize("tools, key, fix", [
    ({"loki": {"retention_days": 3}}, "tools.loki.retention_days", "tools.loki.retentionDays"),
    ({"thanos": {"cluster_label": "stg"}}, "tools.thanos.cluster_label", "tools.thanos.clusterLabel"),
])
def test_a_key_has_one_spelling_and_snake_case_is_unknown(tools, key, fix):
    # Python field names are not stack config keys: `retention_days` and `retentionDays` side by
    # side would leave which one wins to the model.
    err = error_of(aws_config(**tools))
    assert (err.key, err.problem) == (key, "is an unknown key")
    assert err.fix == f"rename it to {fix} (the nearest valid key), or remove it"
    raw = aws_config()
    raw["obs-storage:storage"] = json.dumps({"region": "ap-northeast-2", "bucket_lifecycle": False})
    assert error_of(raw).key == "storage.bucket_lifecycle"
    # The camelCase spelling is the one that is read.
    assert loading.load("staging", aws_config(loki={"retentionDays": 3}), set()).tools.loki.retention_days == 3


def test_aws_stack_name_is_refused_when_a_role_name_would_pass_iams_64_characters():
    # IAM role names are at most 64 characters; the longest is obs-<stack>-loki-index-gateway,
    # 23 characters around the stack name.
    longest_ok = "s" * (64 - len("obs--loki-index-gateway"))
    cfg = loading.load(longest_ok, aws_config(), set())
    assert cfg.target is config.Target.AWS
    too_long = longest_ok + "x"
    with pytest.raises(config.ConfigError) as info:
        loading.load(too_long, aws_config(), set())
    assert str(info.value) == (
        f"stack '{too_long}': stack name = \"{too_long}\" makes the IAM role name obs-{too_long}-loki-index-gateway 65 characters "
        "long, over IAM's 64. Fix: use a stack name of at most 41 characters.")


def test_known_bad_loki_version_is_refused():
    raw = aws_config()
    raw["obs-storage:versions"] = json.dumps({"loki": "3.7.1"})
    err = error_of(raw)
    assert err.key == "versions.loki" and "21926" in err.problem


@pytest.mark.parametrize("version", ["latest", "3.7", "3.x", ">=3.7.7"])
def test_inexact_versions_are_refused(version):
    raw = aws_config()
    raw["obs-storage:versions"] = json.dumps({"tempo": version})
    assert error_of(raw).key == "versions.tempo"


def test_loki_prefix_is_refused():
    assert error_of(aws_config(loki={"bucket": "acme-loki", "prefix": "loki/"})).key == "tools.loki.prefix"


def test_one_bucket_per_tool():
    err = error_of(aws_config(tempo={"bucket": "acme-loki"}))
    assert err.key == "tools.tempo.bucket"


def test_too_many_tenants_for_s3_lifecycle_rules():
    raw = aws_config(loki={"bucket": "acme-loki", "expireAfterDays": 40})
    raw["obs-storage:tenants"] = json.dumps([f"t{i}" for i in range(999)])
    err = error_of(raw)
    assert err.key == "tenants" and "1000" in err.problem


@pytest.mark.parametrize("stack", engine.available_stacks())
def test_each_stack_file_validates(stack):
    raw, secret_keys = engine.stack_config(stack)
    cfg = loading.load(stack, raw, set(secret_keys))
    assert cfg.tools.enabled(), stack


def test_committed_stacks_use_their_documented_targets():
    targets = {s: loading.load(s, *(lambda r, k: (r, set(k)))(*engine.stack_config(s))).target.value for s in ("local", "staging", "prod")}
    assert targets == {"local": "local", "staging": "aws", "prod": "hetzner"}


def _leaf_keys(model, prefix: str = "") -> set[str]:
    """Dotted config keys of every leaf field (nested models are descended, lists are leaves)."""
    keys = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        candidates = () if typing.get_origin(field.annotation) is list else (field.annotation, *typing.get_args(field.annotation))
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, config._Model)]
        keys |= _leaf_keys(nested[0], key + ".") if nested else {key}
    return keys


COMMON_TOOL_FIELDS = ("enabled", "bucket", "prefix", "transitions", "expireAfterDays")


def test_pulumi_yaml_documents_every_config_key():
    text = (ROOT / "Pulumi.yaml").read_text()
    documented = set(re.findall(r"^#\s+([a-zA-Z0-9<>.]+)\s{2,}", text, re.M)) | set(re.findall(r"^  (\w+):$", text, re.M))
    expected = set(config.SECRET_KEYS)
    for key in _leaf_keys(config.StackConfig) - {"secrets"}:
        parts = key.split(".")
        if parts[0] == "tools" and parts[-1] in COMMON_TOOL_FIELDS:
            key = f"tools.<tool>.{parts[-1]}"
        if parts[:3] == ["aws", "ec2", "fleets"]:
            key = f"aws.ec2.fleets.<fleet>.{parts[-1]}"
        expected.add(key)
    missing = sorted(expected - documented)
    assert not missing, f"keys missing from Pulumi.yaml's reference block: {missing}"


@pytest.mark.parametrize("key", ["obs-storage:hetznerSecretkey", "aws:secretKey"])
def test_misspelled_secret_is_not_echoed(key):
    raw = aws_config()
    raw[key] = "SUPERSECRET-VALUE"
    err = error_of(raw, frozenset({key}))
    assert "SUPERSECRET-VALUE" not in str(err) and "(secret value hidden)" in str(err)


def test_misspelled_secret_key_suggests_the_secret_it_meant():
    raw = aws_config()
    raw["obs-storage:hetznerSecretkey"] = "x"
    assert error_of(raw, frozenset({"obs-storage:hetznerSecretkey"})).fix.startswith("rename it to hetznerSecretKey")


def test_a_one_day_safety_net_is_refused_as_too_early_not_as_out_of_range():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "expireAfterDays": 1}))
    assert (err.key, err.value) == ("tools.loki.expireAfterDays", 1) and err.problem.startswith("deletes data Loki still serves")


# ---------------------------------------------------------------- version spellings
@pytest.mark.parametrize("version", ["v3.7.2", "V3.7.2", "3.7.02", "v3.6.11"])
def test_known_bad_loki_version_is_refused_however_spelt(version):
    raw = aws_config()
    raw["obs-storage:versions"] = json.dumps({"loki": version})
    err = error_of(raw)
    assert err.key == "versions.loki" and "21926" in err.problem


@pytest.mark.parametrize(
    "key,version,expected",
    [
        # Tags that do not exist in the artefact's registry: Grafana's Docker Hub images carry no
        # "v", the quay.io Thanos and Prometheus images do, MinIO tags are release dates.
        ("loki", "v3.7.8", "3."),
        ("grafana", "v13.2.3", "13."),
        ("thanos", "0.42.4", "v0."),
        ("prometheus", "3.15.0", "v3."),
        ("minio", "1.2.3", "RELEASE."),
        ("minio", "2025-09-07T16-13-09Z", "RELEASE."),
        ("loki-chart", "v18.13.1", "18."),
    ],
)
def test_version_in_another_tag_format_is_refused(key, version, expected):
    raw = aws_config()
    raw["obs-storage:versions"] = json.dumps({key: version})
    err = error_of(raw)
    assert err.key == f"versions.{key}" and "registry" in err.problem
    assert f"'{expected}" in err.fix, err.fix
    # A chart's is a version in its repository's index, an image's a tag.
    pin = versions.DEFAULT_PINS[key]
    what = "chart version" if key.endswith("-chart") else "tag"
    assert f"is not an exact {pin.name} {what} as its registry publishes it" in str(err), str(err)


@pytest.mark.parametrize("key", sorted(versions.DEFAULT_PINS))
def test_every_pin_has_one_tag_format(key):
    pin = versions.DEFAULT_PINS[key]
    assert pin.kind == "chart" or pin.name in versions._EXACT, f"{pin.name}: add its registry's tag format to versions._EXACT"
    assert versions.version_problem(key, pin.version) is None


@pytest.mark.parametrize(
    "key,version", [("loki", "3.7.7"), ("thanos", "v0.41.0"), ("prometheus", "v3.5.0"), ("minio", "RELEASE.2025-04-22T22-12-26Z"), ("tempo-chart", "2.26.0")]
)
def test_version_in_the_registry_format_is_accepted(key, version):
    raw = aws_config()
    raw["obs-storage:versions"] = json.dumps({key: version})
    assert loading.load("staging", raw, set()).pins[key].version == version


# ---------------------------------------------------------------- messages that say what to do
def test_misspelt_nested_key_suggests_the_nearest_valid_key():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "retentionDay": 3}))
    assert err.key == "tools.loki.retentionDay"
    assert "tools.loki.retentionDays" in err.fix


def test_misspelt_required_key_is_named_rather_than_reported_missing():
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterNmae": "stg"})
    err = error_of(raw)
    assert err.key == "aws.clusterNmae" and "unknown key" in err.problem
    assert "aws.clusterName" in err.fix


def test_misspelt_key_in_a_list_element_suggests_the_nearest_valid_key():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 30, "storageclass": "STANDARD_IA"}]}))
    assert err.key == "tools.loki.transitions[0].storageclass"
    assert "tools.loki.transitions[0].storageClass" in err.fix


def test_misspelt_top_level_key_suggests_the_nearest_valid_key():
    raw = aws_config()
    raw["obs-storage:tenant"] = json.dumps(["a"])
    err = error_of(raw)
    assert err.key == "tenant" and "tenants" in err.fix


def test_unknown_key_without_a_near_match_lists_the_valid_keys():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "zzz": 1}))
    assert "bucket" in err.fix and "retentionDays" in err.fix


def test_unknown_nested_key_without_a_near_match_lists_the_keys_of_its_parent():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "zzz": 1}))
    assert err.fix.startswith("remove it or correct the spelling (valid keys under tools.loki: bucket, ")


CACHES = {"lokiChunksCacheMb": 2048, "lokiResultsCacheMb": 512, "thanosIndexCacheMb": 1024, "thanosResponseCacheMb": 512}


def test_read_path_caches_default_to_the_sizes_the_readme_gives():
    aws = loading.load("staging", aws_config(), set()).aws
    # README "Read-path caches": 2048, 512, 1024 and 512 MB.
    assert {key: getattr(aws, to_snake(key)) for key in CACHES} == CACHES


@pytest.mark.parametrize("key", CACHES)
def test_a_read_path_cache_of_zero_is_off_and_a_negative_one_is_refused(key):
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", key: 0})
    assert getattr(loading.load("staging", raw, set()).aws, to_snake(key)) == 0
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", key: -1})
    err = error_of(raw)
    assert (err.key, err.value) == (f"aws.{key}", -1) and err.problem.startswith("is invalid: input should be greater than or equal to 0")


def test_missing_object_suggests_commands_that_can_set_it():
    raw = aws_config()
    del raw["obs-storage:tools"]
    err = error_of(raw)
    assert err.key == "tools"
    # `pulumi config set` takes one value; an object is set leaf by leaf with --path.
    assert "`pulumi config set --stack staging --path 'obs-storage:tools.loki.bucket' <value>`" in err.fix
    assert "tools.tempo.bucket" in err.fix and "tools.thanos.bucket" in err.fix
    assert "'obs-storage:tools' <value>" not in err.fix


def test_every_suggested_command_names_the_stack():
    raw = aws_config()
    raw.update({"obs-storage:target": "hetzner", "obs-storage:storage": "{}",
                "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"]}),
                "obs-storage:hetznerAccessKey": "AKIAPLAINTEXT", "obs-storage:hetznerSecretKey": "s"})
    err = error_of(raw, frozenset({"obs-storage:hetznerSecretKey"}), stack="prod")
    assert "`pulumi config rm --stack prod hetznerAccessKey`" in err.fix
    assert "`pulumi config set --stack prod --secret hetznerAccessKey <value>`" in err.fix


def test_list_where_a_mapping_belongs_says_so():
    raw = aws_config()
    raw["obs-storage:tools"] = json.dumps([{"loki": {"bucket": "acme-loki"}}])
    err = error_of(raw)
    assert err.key == "tools" and "is a list where a mapping belongs" in err.problem
    assert "loki, tempo, thanos" in err.fix


def test_invalid_bucket_name_reports_every_problem():
    err = error_of(aws_config(loki={"bucket": "Acme_Logs."}))
    assert err.key == "tools.loki.bucket"
    for problem in ("dot", "uppercase", "'_'", "start and end"):
        assert problem in err.problem, err.problem
    assert "'acme-logs'" in err.fix


# ---------------------------------------------------------------- Docker names and the Swarm state node
def _hetzner_raw(**hetzner):
    import yaml

    raw, secret = engine.stack_config("prod")
    base = yaml.safe_load(open("Pulumi.prod.yaml"))["config"]["obs-storage:hetzner"]
    raw["obs-storage:hetzner"] = json.dumps({**base, **hetzner})
    return raw, set(secret)


def test_docker_names_default_to_the_stack():
    raw, secret = engine.stack_config("local")
    assert loading.load("local", raw, set(secret)).name_prefix == "obs-local"
    assert loading.load("Team_B.dev", raw, set(secret)).name_prefix == "obs-team-b-dev"


def test_name_prefix_is_validated_and_refused_on_aws():
    raw, secret = engine.stack_config("local", {"obs-storage:namePrefix": "Obs_Local"})
    with pytest.raises(config.ConfigError) as info:
        loading.load("local", raw, set(secret))
    assert info.value.key == "namePrefix" and "lowercase" in info.value.fix
    raw, secret = engine.stack_config("local", {"obs-storage:namePrefix": "team-x"})
    assert loading.load("local", raw, set(secret)).name_prefix == "team-x"
    raw, secret = engine.stack_config("staging", {"obs-storage:namePrefix": "team-x"})
    with pytest.raises(config.ConfigError) as info:
        loading.load("staging", raw, set(secret))
    assert info.value.key == "namePrefix" and "aws.namespace" in info.value.fix


def test_swarm_state_node_is_required_and_must_be_a_hostname():
    raw, secret = _hetzner_raw()
    data = json.loads(raw["obs-storage:hetzner"])
    del data["stateNode"]
    raw["obs-storage:hetzner"] = json.dumps(data)
    with pytest.raises(config.ConfigError) as info:
        loading.load("prod", raw, secret)
    assert info.value.key == "hetzner.stateNode" and "required" in info.value.problem
    raw, secret = _hetzner_raw(stateNode="node.labels.x == true")
    with pytest.raises(config.ConfigError) as info:
        loading.load("prod", raw, secret)
    assert info.value.key == "hetzner.stateNode" and "docker node ls" in info.value.fix
    raw, secret = _hetzner_raw(stateNode="fsn1-worker-2")
    assert loading.load("prod", raw, secret).hetzner.state_node == "fsn1-worker-2"


# ---------------------------------------------------------------- every guard rail: refused alone, its neighbour accepted
# Each rule below is switched off by a one-token change in components/core/config.py; the refused case
# names its key, value and problem, and the accepted neighbour differs in that one respect only.
HETZNER_SECRETS = frozenset({"obs-storage:hetznerAccessKey", "obs-storage:hetznerSecretKey"})
KMS_KEY = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"


def hetzner_config(storage: dict | None = None, **hetzner) -> dict[str, str]:
    raw = aws_config()
    del raw["obs-storage:aws"]
    raw.update({
        "obs-storage:target": "hetzner",
        "obs-storage:storage": json.dumps(storage if storage is not None else {"bucketLifecycle": False}),
        "obs-storage:hetzner": json.dumps({"swarmHost": "ssh://deploy@manager", "stateNode": "node-1", "nodes": ["node-1", "node-2", "node-3"], **hetzner}),
        "obs-storage:hetznerAccessKey": "k",
        "obs-storage:hetznerSecretKey": "s",
    })
    return raw


def local_config(**storage) -> dict[str, str]:
    raw = aws_config()
    del raw["obs-storage:aws"]
    raw.update({"obs-storage:target": "local", "obs-storage:storage": json.dumps(storage)})
    return raw


def with_storage(raw: dict[str, str], **storage) -> dict[str, str]:
    return {**raw, "obs-storage:storage": json.dumps({**json.loads(raw["obs-storage:storage"]), **storage})}


def accepted(raw: dict[str, str], secret: frozenset[str] = frozenset(), stack: str = "staging") -> config.StackConfig:
    return loading.load(stack, raw, set(secret))


def refused(raw: dict[str, str], key: str, value, problem: str, secret: frozenset[str] = frozenset(), stack: str = "staging") -> config.ConfigError:
    err = error_of(raw, secret, stack)
    assert (err.key, err.value) == (key, value), str(err)
    assert problem in err.problem, str(err)
    return err


def test_receive_replication_factor_must_be_odd():
    err = refused(aws_config(thanos={"bucket": "acme-thanos", "mode": "receive", "receiveReplicationFactor": 2}),
                  "tools.thanos.receiveReplicationFactor", 2, "is even; Receive needs a quorum")
    assert "odd" in err.fix
    for factor in (1, 3):
        assert accepted(aws_config(thanos={"bucket": "acme-thanos", "mode": "receive", "receiveReplicationFactor": factor})).tools.thanos.receive_replication_factor == factor
    # The sidecar mode has no Receive ring: the factor is not used there.
    accepted(aws_config(thanos={"bucket": "acme-thanos", "mode": "sidecar", "receiveReplicationFactor": 2}))


@pytest.mark.parametrize("host", ["tcp://manager:2376", "manager", "ssh://", "ssh://deploy@manager/path", "ssh://deploy@ manager", " ssh://deploy@manager"])
def test_swarm_host_must_be_ssh(host):
    err = refused(hetzner_config(swarmHost=host), "hetzner.swarmHost", host, "is not an ssh:// Docker host", HETZNER_SECRETS, "prod")
    assert "ssh://user@" in err.fix


def test_swarm_host_over_ssh_is_accepted():
    assert accepted(hetzner_config(swarmHost="ssh://deploy@manager:2222"), HETZNER_SECRETS, "prod").hetzner.swarm_host == "ssh://deploy@manager:2222"


@pytest.mark.parametrize("tenant", ["Team-A", "-team", "_team", "team a", "team/a", "t" * 64, ""])
def test_tenant_id_format(tenant):
    raw = aws_config()
    raw["obs-storage:tenants"] = json.dumps(["ok", tenant])
    refused(raw, "tenants[1]", tenant, "cannot be used as a tenant id and object prefix")


def test_tenant_ids_that_are_object_prefixes_are_accepted():
    raw = aws_config()
    tenants = ["team-a", "team_b", "0", "t" * 63]
    raw["obs-storage:tenants"] = json.dumps(tenants)
    cfg = accepted(raw)
    assert cfg.tenants == tenants and cfg.multi_tenant


@pytest.mark.parametrize("tenants", [["team-a", "team-b", "team-a"], []])
def test_tenants_must_be_distinct_and_not_empty(tenants):
    raw = aws_config()
    raw["obs-storage:tenants"] = json.dumps(tenants)
    refused(raw, "tenants", tenants, "must be a non-empty list of distinct ids")


def test_single_tenant_is_lokis_fake_tenant():
    assert accepted(aws_config()).multi_tenant is False
    raw = aws_config()
    raw["obs-storage:tenants"] = json.dumps(["fake", "team-a"])
    assert accepted(raw).multi_tenant is True


@pytest.mark.parametrize("zones", [
    ["ap-northeast-2a", "ap-northeast-2a", "ap-northeast-2b"],
    ["ap-northeast-2a", "ap-northeast-2b"],
    ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c", "ap-northeast-2d"],
])
def test_zones_are_three_distinct(zones):
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", "zones": zones})
    refused(raw, "aws.zones", zones, "must list exactly three distinct zones")


def test_zone_outside_the_region_is_refused():
    raw = aws_config()
    zones = ["ap-northeast-2a", "us-east-1b", "ap-northeast-2c"]
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", "zones": zones})
    err = refused(raw, "aws.zones", zones, "has 'us-east-1b', which is not in region ap-northeast-2")
    assert "ap-northeast-2" in err.fix


def test_zones_default_to_the_regions_first_three_and_can_be_chosen():
    # AWS names a region's zones <region><letter>.
    assert accepted(aws_config()).aws.zones == ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", "zones": ["ap-northeast-2b", "ap-northeast-2c", "ap-northeast-2d"]})
    assert accepted(raw).aws.zones == ["ap-northeast-2b", "ap-northeast-2c", "ap-northeast-2d"]


def test_hetzner_region_must_be_its_location():
    err = refused(hetzner_config({"region": "nbg1", "bucketLifecycle": False}), "storage.region", "nbg1", "differs from hetzner.location 'fsn1'", HETZNER_SECRETS, "prod")
    assert "follows hetzner.location" in err.fix
    same = accepted(hetzner_config({"region": "fsn1", "bucketLifecycle": False}), HETZNER_SECRETS, "prod")
    assert same.storage.region == "fsn1"
    # Unset, region and endpoint follow the location (Hetzner: https://<location>.your-objectstorage.com).
    derived = accepted(hetzner_config(location="hel1"), HETZNER_SECRETS, "prod").storage
    assert (derived.region, derived.endpoint, derived.tls, derived.path_style) == ("hel1", "hel1.your-objectstorage.com", True, True)


def test_hetzner_refuses_plain_http_but_local_minio_uses_it():
    err = refused(hetzner_config({"tls": False, "bucketLifecycle": False}), "storage.tls", False, "would send the Hetzner key pair in clear text", HETZNER_SECRETS, "prod")
    assert "remove storage.tls" in err.fix
    assert accepted(hetzner_config({"tls": True, "bucketLifecycle": False}), HETZNER_SECRETS, "prod").storage.tls is True
    # MinIO on the local Docker network speaks plain HTTP by default, and may be told to.
    assert accepted(local_config(), stack="local").storage.tls is False
    assert accepted(local_config(tls=False), stack="local").storage.tls is False


@pytest.mark.parametrize("endpoint", ["https://s3.example.com", "http://minio:9000", "s3://bucket"])
def test_endpoint_with_a_scheme_is_refused(endpoint):
    err = refused(local_config(endpoint=endpoint), "storage.endpoint", endpoint, "must be host[:port] without a scheme", stack="local")
    assert "storage.tls" in err.fix


@pytest.mark.parametrize("endpoint", ["minio.example.com:9000", "10.0.0.5:9000", "s3.example.com"])
def test_endpoint_without_a_scheme_is_kept_as_given(endpoint):
    assert accepted(local_config(endpoint=endpoint), stack="local").storage.endpoint == endpoint


@pytest.mark.parametrize("arn", [
    "arn:aws:kms:ap-northeast-2:123456789012:alias/obs",
    "arn:aws:kms:ap-northeast-2:12345678901:key/11111111-2222-3333-4444-555555555555",
    "arn:aws:s3:::acme-loki",
    "11111111-2222-3333-4444-555555555555",
    KMS_KEY + "x",
])
def test_kms_key_arn_format(arn):
    err = refused(with_storage(aws_config(), kmsKeyArn=arn), "storage.kmsKeyArn", arn, "is not a KMS key ARN")
    assert "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID" in err.fix


@pytest.mark.parametrize("arn", [KMS_KEY, "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"])
def test_kms_key_arn_is_accepted_on_aws(arn):
    assert accepted(with_storage(aws_config(), kmsKeyArn=arn)).storage.kms_key_arn == arn


def test_versioning_needs_bucket_lifecycle():
    err = refused(with_storage(aws_config(), versioning=True, bucketLifecycle=False), "storage.versioning", True, "keeps every deleted object forever")
    assert "storage.versioning to false" in err.fix
    assert accepted(with_storage(aws_config(), versioning=True, bucketLifecycle=True)).storage.versioning is True
    assert accepted(with_storage(aws_config(), versioning=False, bucketLifecycle=False)).storage.versioning is False


def test_versioning_defaults_on_where_lifecycle_can_expire_old_versions():
    assert accepted(aws_config()).storage.versioning is True
    assert accepted(with_storage(aws_config(), bucketLifecycle=False)).storage.versioning is False
    assert accepted(local_config(), stack="local").storage.versioning is True
    # Hetzner documents lifecycle for expiry only: no noncurrent-version rule, so no versioning.
    assert accepted(hetzner_config({}), HETZNER_SECRETS, "prod").storage.versioning is False


@pytest.mark.parametrize("fields, key, value", [
    ({"expireAfterDays": 40}, "tools.loki.expireAfterDays", 40),
    ({"transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]}, "tools.loki.transitions", [{"days": 30, "storageClass": "STANDARD_IA"}]),
])
def test_bucket_rules_need_bucket_lifecycle(fields, key, value):
    raw = with_storage(aws_config(loki={"bucket": "acme-loki", **fields}), bucketLifecycle=False)
    err = refused(raw, key, value, "sets a bucket rule while storage.bucketLifecycle is false")
    assert "storage.bucketLifecycle to true" in err.fix
    assert accepted(with_storage(aws_config(loki={"bucket": "acme-loki", **fields}), bucketLifecycle=True)).storage.bucket_lifecycle is True
    assert accepted(with_storage(aws_config(), bucketLifecycle=False)).storage.bucket_lifecycle is False


def test_hetzner_needs_both_keys_of_its_pair():
    raw = hetzner_config()
    del raw["obs-storage:hetznerSecretKey"]
    err = refused(raw, "hetznerSecretKey", config._MISSING, "is required for target hetzner", frozenset({"obs-storage:hetznerAccessKey"}), "prod")
    assert "`pulumi config set --stack prod --secret hetznerSecretKey <secret>`" in err.fix
    assert str(err).startswith("stack 'prod': obs-storage:hetznerSecretKey = (not set) is required")
    cfg = accepted(hetzner_config(), HETZNER_SECRETS, "prod")
    assert cfg.secrets.hetzner_access_key.get_secret_value() == "k" and cfg.secrets.hetzner_secret_key.get_secret_value() == "s"


@pytest.mark.parametrize("days", [[90, 30], [60, 60]])
def test_transitions_must_be_in_increasing_days(days):
    transitions = [{"days": days[0], "storageClass": "STANDARD_IA"}, {"days": days[1], "storageClass": "GLACIER_IR"}]
    err = refused(aws_config(loki={"bucket": "acme-loki", "transitions": transitions}), "tools.loki.transitions[1]", days[1], "is not later than the previous transition")
    assert "increasing days" in err.fix


def test_readable_transitions_in_increasing_days_are_accepted():
    transitions = [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 31, "storageClass": "INTELLIGENT_TIERING"}, {"days": 90, "storageClass": "GLACIER_IR"}]
    cfg = accepted(aws_config(loki={"bucket": "acme-loki", "retentionDays": 365, "transitions": transitions, "expireAfterDays": 400}))
    assert [(t.days, t.storage_class) for t in cfg.tools.loki.transitions] == [(30, "STANDARD_IA"), (31, "INTELLIGENT_TIERING"), (90, "GLACIER_IR")]
    assert cfg.tools.loki.expire_after_days == 400


def test_one_zone_storage_class_is_refused():
    err = refused(aws_config(tempo={"bucket": "acme-tempo", "transitions": [{"days": 30, "storageClass": "ONEZONE_IA"}]}),
                  "tools.tempo.transitions[0]", "ONEZONE_IA", "stores data in one availability zone")
    assert "STANDARD_IA" in err.fix
    accepted(aws_config(tempo={"bucket": "acme-tempo", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]}))


@pytest.mark.parametrize("expire", [60, 90])
def test_expiry_must_come_after_the_last_transition(expire):
    # Retention 7d: the expiry is well above what Loki serves, but not after its last transition.
    transitions = [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 90, "storageClass": "GLACIER_IR"}]
    err = refused(aws_config(loki={"bucket": "acme-loki", "retentionDays": 7, "transitions": transitions, "expireAfterDays": expire}),
                  "tools.loki.expireAfterDays", expire, "is not after the last transition")
    assert "after the last transition" in err.fix
    accepted(aws_config(loki={"bucket": "acme-loki", "retentionDays": 7, "transitions": transitions, "expireAfterDays": 91}))


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_archive_transition_boundary_is_the_last_served_hour(storage_class):
    # Retention 31d with no delete delay: Loki serves an object until hour 744 = day 31 exactly.
    fields = {"bucket": "acme-loki", "retentionDays": 31, "deleteDelayHours": 0}
    err = refused(aws_config(loki={**fields, "transitions": [{"days": 31, "storageClass": storage_class}]}),
                  "tools.loki.transitions[0]", {"days": 31, "storageClass": storage_class}, "until hour 744")
    assert f"to {storage_class}, which cannot be read without a restore" in err.problem
    accepted(aws_config(loki={**fields, "transitions": [{"days": 32, "storageClass": storage_class}]}))
    # The delete delay counts: with Loki's default 2h, day 31 (hour 744) is still inside hour 746.
    refused(aws_config(loki={"bucket": "acme-loki", "retentionDays": 30, "deleteDelayHours": 25, "transitions": [{"days": 31, "storageClass": storage_class}]}),
            "tools.loki.transitions[0]", {"days": 31, "storageClass": storage_class}, "until hour 745")


def test_archive_transition_of_data_kept_forever_is_refused():
    fields = {"bucket": "acme-thanos", "retention": {"rawDays": 30, "fiveMinuteDays": 90, "oneHourDays": 0}}
    refused(aws_config(thanos={**fields, "transitions": [{"days": 5000, "storageClass": "GLACIER"}]}),
            "tools.thanos.transitions[0]", {"days": 5000, "storageClass": "GLACIER"}, "i.e. forever")
    accepted(aws_config(thanos={**fields, "transitions": [{"days": 5000, "storageClass": "GLACIER_IR"}]}))


def test_expiry_boundary_is_the_last_served_hour():
    fields = {"bucket": "acme-tempo", "retentionDays": 14, "deleteDelayHours": 0}
    err = refused(aws_config(tempo={**fields, "expireAfterDays": 14}), "tools.tempo.expireAfterDays", 14, "deletes data Tempo still serves (retention 14d + 0h delete delay)")
    assert "at least 15" in err.fix
    accepted(aws_config(tempo={**fields, "expireAfterDays": 15}))
    # Tempo's default delete delay (1h) moves the minimum a whole day.
    refused(aws_config(tempo={"bucket": "acme-tempo", "retentionDays": 14, "expireAfterDays": 14}), "tools.tempo.expireAfterDays", 14, "retention 14d + 1h")


def test_standard_ia_minimum_is_thirty_days_exactly():
    err = refused(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 29, "storageClass": "STANDARD_IA"}]}),
                  "tools.loki.transitions[0]", 29, "is below the 30-day minimum AWS allows for STANDARD_IA")
    assert err.fix == "use 30 or more days"
    accepted(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]}))
    # The minimum is STANDARD_IA's: other readable classes may start earlier.
    accepted(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 1, "storageClass": "GLACIER_IR"}]}))


def test_lifecycle_rule_count_boundary_is_s3s_limit():
    raw = aws_config(loki={"bucket": "acme-loki", "expireAfterDays": 40})
    # Loki: one rule per tenant prefix plus two bucket-wide rules; S3 allows 1,000.
    raw["obs-storage:tenants"] = json.dumps([f"t{i}" for i in range(998)])
    assert len(accepted(raw).tenants) == 998
    raw["obs-storage:tenants"] = json.dumps([f"t{i}" for i in range(999)])
    err = refused(raw, "tenants", "999 tenants", "needs 1001 lifecycle rules on the Loki bucket")
    assert "S3 allows 1000" in err.problem and "tools.loki.expireAfterDays" in err.fix


def test_tempo_bucket_has_per_tenant_rules_too():
    raw = aws_config(loki={"bucket": "acme-loki", "enabled": False}, tempo={"bucket": "acme-tempo", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}]})
    raw["obs-storage:tenants"] = json.dumps([f"t{i}" for i in range(999)])
    refused(raw, "tenants", "999 tenants", "needs 1001 lifecycle rules on the Tempo bucket")


def test_tenants_without_per_tenant_rules_are_not_limited():
    # Without transitions or an expiration, the buckets carry only the two bucket-wide rules.
    raw = aws_config()
    raw["obs-storage:tenants"] = json.dumps([f"t{i}" for i in range(1500)])
    assert len(accepted(raw).tenants) == 1500


# ---------------------------------------------------------------- bounds, defaults and messages
@pytest.mark.parametrize("tool, field, refused_value, accepted_value", [
    ("loki", "retentionDays", 0, 1),
    ("tempo", "retentionDays", 0, 1),
    ("loki", "deleteDelayHours", -1, 0),
    ("tempo", "deleteDelayHours", -1, 0),
    ("thanos", "deleteDelayHours", -1, 0),
    ("loki", "expireAfterDays", 0, None),
    ("thanos", "receiveReplicationFactor", 0, 1),
])
def test_tool_number_bounds(tool, field, refused_value, accepted_value):
    err = error_of(aws_config(**{tool: {"bucket": f"acme-{tool}", field: refused_value}}))
    assert (err.key, err.value) == (f"tools.{tool}.{field}", refused_value) and "greater than or equal to" in err.problem
    if accepted_value is not None:
        accepted(aws_config(**{tool: {"bucket": f"acme-{tool}", field: accepted_value}}))


@pytest.mark.parametrize("resolution", ["rawDays", "fiveMinuteDays", "oneHourDays"])
def test_thanos_resolution_zero_keeps_it_forever_and_negative_is_refused(resolution):
    err = error_of(aws_config(thanos={"bucket": "acme-thanos", "retention": {resolution: -1}}))
    assert err.key == f"tools.thanos.retention.{resolution}"
    thanos = accepted(aws_config(thanos={"bucket": "acme-thanos", "retention": {resolution: 0}})).tools.thanos
    assert thanos.served_hours() is None


def test_transition_needs_at_least_one_day():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": 0, "storageClass": "GLACIER_IR"}]}))
    assert err.key == "tools.loki.transitions[0].days"


def test_storage_number_bounds():
    err = error_of(with_storage(aws_config(), noncurrentVersionDays=0))
    assert err.key == "storage.noncurrentVersionDays"
    assert accepted(with_storage(aws_config(), noncurrentVersionDays=1)).storage.noncurrent_version_days == 1
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", "thanosCompactDiskGi": 9})
    assert error_of(raw).key == "aws.thanosCompactDiskGi"
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", "thanosCompactDiskGi": 10})
    assert accepted(raw).aws.thanos_compact_disk_gi == 10


def test_defaults_are_the_tools_own():
    cfg = accepted(aws_config())
    loki, tempo, thanos = cfg.tools.loki, cfg.tools.tempo, cfg.tools.thanos
    # Loki compactor.retention_delete_delay 2h; Tempo compactor compacted_block_retention 1h;
    # Thanos compact --delete-delay 48h: the upstream defaults, and what each serves meanwhile.
    assert (loki.retention_days, loki.delete_delay_hours, loki.served_hours()) == (31, 2, 31 * 24 + 2)
    assert (tempo.retention_days, tempo.delete_delay_hours, tempo.served_hours()) == (14, 1, 14 * 24 + 1)
    r = thanos.retention
    assert (r.raw_days, r.five_minute_days, r.one_hour_days, thanos.delete_delay_hours) == (30, 90, 365, 48)
    assert thanos.served_hours() == 365 * 24 + 48 and thanos.mode == "sidecar" and thanos.receive_replication_factor == 3
    assert cfg.storage.noncurrent_version_days == 7 and cfg.storage.bucket_lifecycle is True
    assert (cfg.aws.identity, cfg.aws.oidc_provider, cfg.aws.namespace, cfg.aws.wal_volume) == ("irsa", "existing", "observability", "emptyDir")
    # The compactor's scratch defaults to what fits half of EKS' default 20 GiB node root volume.
    assert (cfg.aws.prometheus_crds, cfg.aws.node_exporter, cfg.aws.thanos_compact_gib()) == ("install", False, 10)
    assert cfg.name_prefix is None and cfg.tenants == ["fake"]


def test_served_hours_add_the_delete_delay():
    # 14 days = 336 h; a 16 h delay makes 352 h, so 14 days of expiry is refused and 15 (360 h) is not.
    tempo = {"bucket": "acme-tempo", "retentionDays": 14, "deleteDelayHours": 16}
    err = error_of(aws_config(tempo={**tempo, "expireAfterDays": 14}))
    assert err.fix == "set it to at least 15, or remove it"
    assert accepted(aws_config(tempo={**tempo, "expireAfterDays": 15})).tools.tempo.served_hours() == 352
    thanos = {"bucket": "acme-thanos", "retention": {"rawDays": 400}, "deleteDelayHours": 16}
    assert accepted(aws_config(thanos=thanos)).tools.thanos.served_hours() == 400 * 24 + 16


def test_local_defaults_and_overrides():
    cfg = accepted(local_config(), stack="local")
    s = cfg.storage
    # MinIO: its default region, its container name, path-style, plain HTTP, throwaway buckets.
    assert (s.region, s.endpoint, s.path_style, s.tls, s.protect) == ("us-east-1", "minio:9000", True, False, False)
    assert cfg.name_prefix == "obs-local"
    s = accepted(local_config(region="eu-west-1", endpoint="minio.example.com:9000", pathStyle=False, tls=True, protect=True), stack="local").storage
    assert (s.region, s.endpoint, s.path_style, s.tls, s.protect) == ("eu-west-1", "minio.example.com:9000", False, True, True)


def test_aws_defaults_and_overrides():
    s = accepted(aws_config()).storage
    assert (s.endpoint, s.path_style, s.tls, s.protect) == ("s3.ap-northeast-2.amazonaws.com", False, True, True)
    s = accepted(with_storage(aws_config(), endpoint="s3.example.com", pathStyle=True, tls=False, protect=False)).storage
    assert (s.endpoint, s.path_style, s.tls, s.protect) == ("s3.example.com", True, False, False)
    assert accepted(aws_config()).name_prefix is None


def test_hetzner_defaults_and_overrides():
    s = accepted(hetzner_config(), HETZNER_SECRETS, "prod").storage
    assert (s.path_style, s.protect) == (True, True)
    s = accepted(hetzner_config({"bucketLifecycle": False, "pathStyle": False, "protect": False, "endpoint": "fsn1.example.com"}), HETZNER_SECRETS, "prod").storage
    assert (s.path_style, s.protect, s.endpoint) == (False, False, "fsn1.example.com")


def test_target_needs_its_platform_settings():
    raw = aws_config()
    del raw["obs-storage:aws"]
    assert error_of(raw).key == "aws.clusterName"
    raw = with_storage(aws_config(), region=None)
    err = error_of({**raw, "obs-storage:storage": json.dumps({})})
    assert (err.key, err.problem) == ("storage.region", "is required for target aws")
    raw = hetzner_config()
    del raw["obs-storage:hetzner"]
    assert error_of(raw, HETZNER_SECRETS, "prod").key == "hetzner.swarmHost"


def test_tags_are_for_aws_buckets_only():
    assert accepted(with_storage(aws_config(), tags={"team": "obs"})).storage.tags == {"team": "obs"}
    err = error_of(local_config(tags={"team": "obs"}), stack="local")
    assert err.key == "storage.tags" and "target local" in err.problem


@pytest.mark.parametrize("target, why", [("hetzner", "Hetzner has no storage classes"), ("local", "MinIO transitions need ILM tiers")])
def test_transitions_outside_aws_say_why(target, why):
    transitions = [{"days": 30, "storageClass": "STANDARD_IA"}]
    if target == "hetzner":
        raw, secret, stack = hetzner_config({}), HETZNER_SECRETS, "prod"
    else:
        raw, secret, stack = local_config(), frozenset(), "local"
    tools = json.loads(raw["obs-storage:tools"])
    tools["loki"]["transitions"] = transitions
    err = error_of({**raw, "obs-storage:tools": json.dumps(tools)}, secret, stack)
    assert (err.key, err.value) == ("tools.loki.transitions", transitions)
    assert f"which target {target} does not support ({why}" in err.problem


def test_object_prefix_format():
    for prefix in ("traces", "Traces/", "/traces/", "traces//"):
        err = error_of(aws_config(tempo={"bucket": "acme-tempo", "prefix": prefix}))
        assert (err.key, err.problem) == ("tools.tempo.prefix", "is not a valid object prefix"), prefix
    for prefix in ("", "traces/", "a/b-c.d_e/"):
        assert accepted(aws_config(tempo={"bucket": "acme-tempo", "prefix": prefix})).tools.tempo.prefix == prefix


def test_bucket_name_length_bounds_and_a_suggestion_that_fits():
    assert accepted(aws_config(loki={"bucket": "abc"})).tools.loki.bucket == "abc"
    assert accepted(aws_config(loki={"bucket": "a" * 63})).tools.loki.bucket == "a" * 63
    err = error_of(aws_config(loki={"bucket": "Acme_" + "x" * 70}))
    assert f"e.g. {('acme-' + 'x' * 70)[:63]!r}" in err.fix


def test_type_errors_say_what_was_expected():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "retentionDays": "a month"}))
    assert err.key == "tools.loki.retentionDays" and err.value == "a month"
    assert err.problem.startswith("is invalid: input should be a valid integer")
    assert err.fix == "set a value of the documented type (see docs/configuration-reference.md)"


def test_an_unknown_key_is_named_before_other_problems():
    raw = with_storage(aws_config(loki={"bucket": "acme-loki", "retentionDayz": 3}), tls="maybe")
    err = error_of(raw)
    assert err.key == "tools.loki.retentionDayz" and err.problem == "is an unknown key (and 1 more problem)"
    raw = with_storage(aws_config(loki={"bucket": "acme-loki", "retentionDayz": 3, "deleteDelayHourz": 1}), tls="maybe")
    assert error_of(raw).problem.endswith("(and 2 more problems)")


def test_missing_keys_suggest_a_command_that_sets_them():
    raw = aws_config()
    del raw["obs-storage:target"]
    err = error_of(raw)
    assert err.key == "target" and err.fix == "set it with `pulumi config set --stack staging 'obs-storage:target' <value>`"
    raw = aws_config(loki={"bucket": "acme-loki", "transitions": [{"storageClass": "STANDARD_IA"}]})
    err = error_of(raw)
    assert err.key == "tools.loki.transitions[0].days"
    assert err.fix == "set it with `pulumi config set --stack staging --path 'obs-storage:tools.loki.transitions[0].days' <value>`"


def test_keys_of_other_namespaces_are_refused_wherever_they_sort():
    raw = aws_config()
    raw.update({"pulumi:template": "x", "zeta:key": "1"})
    err = error_of(raw)
    assert err.key == "zeta:key" and "namespace this program does not read" in err.problem


def test_docker_name_prefix_is_cut_to_thirty_characters():
    assert config.default_name_prefix("a-very-long-stack-name-for-a-team") == "obs-a-very-long-stack-name-for"
    assert len(config.default_name_prefix("x" * 40)) == 30
    assert config.default_name_prefix("___") == "obs-stack"


def test_the_program_reads_config_and_secret_keys_from_the_engine(monkeypatch):
    import pulumi

    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    raw = {"obs-storage:target": "local", "obs-storage:hetznerSecretKey": "s"}
    pulumi.runtime.set_all_config(raw, ["obs-storage:hetznerSecretKey"])
    read, secret = loading.read_pulumi_config()
    assert read == raw and secret == {"obs-storage:hetznerSecretKey"}


def test_type_errors_in_list_elements_show_the_value_given():
    err = error_of(aws_config(loki={"bucket": "acme-loki", "transitions": [{"days": "soon", "storageClass": "STANDARD_IA"}]}))
    assert (err.key, err.value) == ("tools.loki.transitions[0].days", "soon")


def test_a_wrong_type_is_not_mistaken_for_an_unknown_or_missing_key():
    err = error_of(with_storage(aws_config(), tls="maybe"))
    assert (err.key, err.value) == ("storage.tls", "maybe")
    assert err.problem == "is invalid: input should be a valid boolean, unable to interpret input"
    assert err.fix == "set a value of the documented type (see docs/configuration-reference.md)"
    # A list where a single value belongs is a type error too, not a mapping written as a list.
    err = error_of(with_storage(aws_config(), region=["ap-northeast-2"]))
    assert err.fix == "set a value of the documented type (see docs/configuration-reference.md)"


def test_a_missing_nested_key_is_set_with_path():
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({})
    assert error_of(raw).fix == "set it with `pulumi config set --stack staging --path 'obs-storage:aws.clusterName' <value>`"


def test_a_missing_object_lists_each_required_key_once():
    raw = aws_config()
    del raw["obs-storage:tools"]
    assert error_of(raw).fix == (
        "set its required keys: `pulumi config set --stack staging --path 'obs-storage:tools.loki.bucket' <value>` "
        "(likewise tools.tempo.bucket, tools.thanos.bucket), or add obs-storage:tools to the stack file as Pulumi.yaml documents it")


def test_a_mapping_written_as_a_list_names_its_keys_as_written_in_the_stack_file():
    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps([{"clusterName": "stg"}])
    fix = error_of(raw).fix
    assert fix.startswith("write aws as indented `key: value` lines, without a leading '- ' (keys: clusterName, identity, oidcProvider, namespace,")


def test_receive_replication_factor_four_is_even_too():
    refused(aws_config(thanos={"bucket": "acme-thanos", "mode": "receive", "receiveReplicationFactor": 4}),
            "tools.thanos.receiveReplicationFactor", 4, "is even")
    accepted(aws_config(thanos={"bucket": "acme-thanos", "mode": "receive", "receiveReplicationFactor": 5}))


def test_any_tenant_list_but_lokis_fake_one_is_multi_tenant():
    raw = aws_config()
    raw["obs-storage:tenants"] = json.dumps(["a"])
    assert accepted(raw).multi_tenant is True


def test_hetzner_region_is_refused_whatever_it_says():
    refused(hetzner_config({"region": "eu-central", "bucketLifecycle": False}), "storage.region", "eu-central", "differs from hetzner.location", HETZNER_SECRETS, "prod")


def test_a_value_of_the_wrong_type_says_what_was_expected():
    err = error_of(with_storage(aws_config(), region=["ap-northeast-2"]))
    assert err.problem == "is invalid: input should be a valid string"


def test_a_missing_tool_lists_its_one_required_key():
    raw = aws_config()
    tools = json.loads(raw["obs-storage:tools"])
    del tools["loki"]
    raw["obs-storage:tools"] = json.dumps(tools)
    assert error_of(raw).fix == ("set its required keys: `pulumi config set --stack staging --path 'obs-storage:tools.loki.bucket' <value>`, "
                                 "or add obs-storage:tools.loki to the stack file as Pulumi.yaml documents it")


def test_an_unknown_key_unlike_any_other_lists_the_valid_keys():
    raw = aws_config()
    raw["obs-storage:zzzzzz"] = "1"
    assert error_of(raw).fix.startswith("remove it or correct the spelling (valid keys: alertReceiverSecrets, alerting, aws, ")


def test_an_enabled_loki_or_tempo_needs_its_bucket():
    for tool in ("loki", "tempo"):
        fields = {"loki": {"bucket": "acme-loki"}, "tempo": {"bucket": "acme-tempo"}, "thanos": {"bucket": "acme-thanos"}}
        del fields[tool]["bucket"]
        raw = {**aws_config(), "obs-storage:tools": json.dumps(fields)}
        err = refused(raw, f"tools.{tool}.bucket", config._MISSING, "is required")
        assert err.problem == "is required" and "spoke" not in err.fix, str(err)


def test_structured_config_that_is_not_json_is_refused():
    raw = aws_config()
    raw["obs-storage:tools"] = "{loki: "
    err = error_of(raw)
    assert err.key == "tools" and err.problem.startswith("is not valid structured config (")
