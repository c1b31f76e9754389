"""Every IAM action, resource ARN and condition key in every stack's plan exists in the AWS
action database that policy_sentry ships (policy_sentry/shared/data/iam-definition.json): a
misspelled action or an action on the wrong kind of resource fails here, not in production."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from tests.integration import adapter

# Documents of identity policies (actions are checked against their resources) and of resource
# policies / trusts (actions only: their resources are the bucket, or none).
IDENTITY_DOCUMENTS = {adapter.MINIO_POLICY: "policy", adapter.AWS_ROLE_POLICY: "policy"}
OTHER_DOCUMENTS = {adapter.AWS_POLICY: "policy", adapter.AWS_ROLE: "assumeRolePolicy"}


def documents(plan: dict[str, Any]) -> Iterator[tuple[str, bool, dict[str, Any]]]:
    for resource in plan["resources"]:
        for table, identity in ((IDENTITY_DOCUMENTS, True), (OTHER_DOCUMENTS, False)):
            key = table.get(resource["type"])
            if key and isinstance(resource["inputs"].get(key), str) and resource["inputs"][key] != "[secret]":
                yield resource["urn"], identity, json.loads(resource["inputs"][key])


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def problems(urn: str, identity: bool, document: dict[str, Any]) -> list[str]:
    # Imported here: `make test` collects this module without the integration requirements.
    from policy_sentry.querying.actions import get_action_data, get_actions_for_service
    from policy_sentry.util.arns import does_arn_match

    out = []
    for st in _list(document.get("Statement", [])):
        for action in _list(st.get("Action", [])):
            service, _, name = action.partition(":")
            if "*" in name:
                if not [a for a in get_actions_for_service(service) if a.lower().startswith(f"{service}:{name.rstrip('*')}".lower())]:
                    out.append(f"{urn}: {action} matches no {service} action")
                continue
            entries = get_action_data(service, name).get(service, [])
            if not entries:
                out.append(f"{urn}: {action} is not an IAM action")
                continue
            if identity:
                formats = [e["resource_arn_format"] for e in entries]
                for arn in _list(st.get("Resource", [])):
                    if arn != "*" and not any(does_arn_match(arn, f) for f in formats):
                        out.append(f"{urn}: {action} does not apply to {arn} (resource types: {formats})")
            keys = {k for e in entries for k in e["condition_keys"]}
            for conditions in st.get("Condition", {}).values():
                for key in conditions:
                    if key.startswith("aws:") or not identity:
                        continue  # global keys, and issuer-specific trust keys (<issuer>:sub)
                    if key not in keys:
                        out.append(f"{urn}: condition key {key} does not exist for {action}")
    return out


@pytest.mark.parametrize("stack", ["local", "staging", "prod", "staging-ec2"])
def test_every_action_resource_and_condition_key_exists(plan_json, stack):
    found = list(documents(plan_json(stack)))
    if stack != "prod":  # prod (Hetzner) has no IAM documents at all
        assert found
    assert [p for urn, identity, document in found for p in problems(urn, identity, document)] == []


@pytest.mark.parametrize(
    "statement, expected",
    [
        ({"Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": ["arn:aws:s3:::b/*"]}, "s3:GetObjekt is not an IAM action"),
        ({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::b/*"]}, "s3:ListBucket does not apply to arn:aws:s3:::b/*"),
        ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b"]}, "s3:GetObject does not apply to arn:aws:s3:::b"),
        ({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::b"], "Condition": {"StringLike": {"s3:prefixx": ["a/*"]}}},
         "condition key s3:prefixx does not exist"),
    ],
    ids=["misspelled-action", "list-on-objects", "get-on-bucket", "misspelled-condition-key"],
)
def test_the_check_catches_what_aws_would_refuse_or_ignore(statement, expected):
    found = problems("urn:test", True, {"Version": "2012-10-17", "Statement": [statement]})
    assert any(expected in p for p in found), found
