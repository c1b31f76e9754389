"""Who touches which bucket with which S3 actions (components/core/access.py), without mocks. Expected
actions come from what each component does to its bucket (DOMAIN_NOTES, "IAM per tool"), written
out here, never read back from the module."""

from __future__ import annotations

import json

from components.core import access
from tests.conftest import aws_stack_config

LIST, GET, PUT, DELETE = "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
TAGS = {"s3:GetObjectTagging", "s3:PutObjectTagging"}
KEY = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"


cfg_of = aws_stack_config


def table(grants: list[access.Grant]) -> dict[str, tuple[str, set[str]]]:
    return {g.service_account: (g.tool, set(g.actions)) for g in grants}


def test_each_component_gets_only_what_it_does_to_its_bucket():
    assert table(access.grants(cfg_of())) == {
        "loki-ingester": ("loki", {LIST, GET, PUT}),
        "loki-querier": ("loki", {LIST, GET}),
        "loki-index-gateway": ("loki", {LIST, GET}),
        # Retention and delete requests: only the compactor deletes.
        "loki-compactor": ("loki", {LIST, GET, PUT, DELETE}),
        "tempo": ("tempo", {LIST, GET, PUT, DELETE} | TAGS),
        "thanos-compact": ("thanos", {LIST, GET, PUT, DELETE}),
        "thanos-store": ("thanos", {LIST, GET}),
        "prometheus": ("thanos", {LIST, GET, PUT}),
    }


def test_receive_uploads_instead_of_the_sidecar():
    grants = table(access.grants(cfg_of(mode="receive")))
    assert grants["thanos-receive"] == ("thanos", {LIST, GET, PUT}) and "prometheus" not in grants


def test_a_disabled_tool_gets_no_grant():
    grants = table(access.grants(cfg_of(tempo={"enabled": False}, loki={"enabled": False})))
    assert {tool for tool, _ in grants.values()} == {"thanos"}
    assert table(access.grants(cfg_of(thanos={"enabled": False}))).keys() == {
        "loki-ingester", "loki-querier", "loki-index-gateway", "loki-compactor", "tempo"}


def test_a_grant_writes_when_it_may_put_objects():
    writes = {g.service_account: g.writes for g in access.grants(cfg_of())}
    assert writes == {"loki-ingester": True, "loki-querier": False, "loki-index-gateway": False, "loki-compactor": True,
                      "tempo": True, "thanos-compact": True, "thanos-store": False, "prometheus": True}


def document(*args, **kwargs) -> dict:
    doc = json.loads(access.bucket_policy_document(*args, **kwargs))
    assert doc["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in doc["Statement"]}


def test_policy_lists_the_bucket_and_touches_its_objects_only():
    statements = document("arn:aws:s3:::acme-loki", "", (GET, LIST, PUT))
    assert statements == {
        "ListOwnBucket": {"Sid": "ListOwnBucket", "Effect": "Allow", "Action": [LIST], "Resource": ["arn:aws:s3:::acme-loki"]},
        "ObjectsInOwnBucket": {"Sid": "ObjectsInOwnBucket", "Effect": "Allow", "Action": [GET, PUT], "Resource": ["arn:aws:s3:::acme-loki/*"]},
    }


def test_a_prefix_narrows_listing_and_objects():
    statements = document("arn:aws:s3:::acme-tempo", "traces/", (LIST, GET))
    assert statements["ListOwnBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["traces/*"]}}
    assert statements["ObjectsInOwnBucket"]["Resource"] == ["arn:aws:s3:::acme-tempo/traces/*"]


def test_a_policy_holds_only_the_statements_its_actions_need():
    assert set(document("arn:aws:s3:::b", "", (LIST,))) == {"ListOwnBucket"}
    assert set(document("arn:aws:s3:::b", "", (GET,))) == {"ObjectsInOwnBucket"}


def test_kms_key_use_follows_writing():
    # Writing an SSE-KMS object needs a data key; reading one needs Decrypt only.
    writer = document("arn:aws:s3:::b", "", (LIST, GET, PUT), KEY)["UseBucketKey"]
    assert writer == {"Sid": "UseBucketKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], "Resource": [KEY]}
    reader = document("arn:aws:s3:::b", "", (LIST, GET), KEY)["UseBucketKey"]
    assert reader["Action"] == ["kms:Decrypt"] and reader["Resource"] == [KEY]
    assert "UseBucketKey" not in document("arn:aws:s3:::b", "", (LIST, GET, PUT))


def test_policy_text_does_not_depend_on_how_the_statements_were_built():
    # Canonical JSON (sorted keys): building a statement's fields in another order must not show
    # up as a policy change in `pulumi preview`.
    text = access.bucket_policy_document("arn:aws:s3:::b", "p/", (LIST, GET, PUT), KEY)
    assert text == json.dumps(json.loads(text), sort_keys=True)


def test_grants_are_values_no_backend_can_change():
    import dataclasses

    import pytest

    grant = access.grants(cfg_of())[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        grant.actions = ("s3:*",)


def test_ec2_fleets_get_one_grant_each_covering_every_role_their_process_plays():
    # aws.platform ec2: one instance role per fleet. Loki runs every component in one process
    # (-target=all), so its fleet needs the ingester's writes, the querier's reads and the
    # compactor's deletes together; metrics go in by Receive only, so there is no sidecar grant.
    from tests.test_ec2 import ec2_raw, load

    assert table(access.grants(load(ec2_raw()))) == {
        "loki": ("loki", {LIST, GET, PUT, DELETE}),
        "tempo": ("tempo", {LIST, GET, PUT, DELETE} | TAGS),
        "thanos-compact": ("thanos", {LIST, GET, PUT, DELETE}),
        "thanos-store": ("thanos", {LIST, GET}),
        "thanos-receive": ("thanos", {LIST, GET, PUT}),
    }
    # A disabled tool's fleet gets nothing, and the others keep theirs.
    assert table(access.grants(load(ec2_raw(loki={"enabled": False}, thanos={"enabled": False})))).keys() == {"tempo"}
    assert table(access.grants(load(ec2_raw(tempo={"enabled": False})))).keys() == {"loki", "thanos-compact", "thanos-store", "thanos-receive"}
