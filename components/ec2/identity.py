"""Instance roles of the ec2 platform: one IAM role and instance profile per fleet family, trusted
by EC2 only. A tool's family gets exactly its grant's actions on its own bucket (the same
`access.bucket_policy_document` the IRSA roles carry); the platform adds what the instances
themselves do: register in and deregister from their own Cloud Map services, complete their own
group's lifecycle hook, and (Grafana) read its own secrets.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.core.access import Grant, bucket_policy_document
from components.core.config import role_name
from components.core.identity import Credentials
from components.core.storage import ToolBucket


def ec2_trust_policy() -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        sort_keys=True,
    )


class InstanceRoles:
    """Identity backend of target aws on `aws.platform: ec2`: roles per fleet family."""

    kind = "ec2-instance-profile"

    def __init__(self, provider: aws.Provider, stack: str, kms_key_arn: Optional[str]):
        self.provider, self.stack, self.kms_key_arn = provider, stack, kms_key_arn
        self.roles: dict[str, aws.iam.Role] = {}
        self.profiles: dict[str, aws.iam.InstanceProfile] = {}

    def role(self, parent: pulumi.Resource, family: str, purpose: str) -> aws.iam.Role:
        """The family's role and instance profile, declared once."""
        if family not in self.roles:
            child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
            role = aws.iam.Role(f"{family}-role", name=role_name(self.stack, family), description=f"{family} instances: {purpose}",
                                assume_role_policy=ec2_trust_policy(), opts=child)
            self.roles[family] = role
            self.profiles[family] = aws.iam.InstanceProfile(f"{family}-instance-profile", name=role_name(self.stack, family), role=role.name, opts=child)
        return self.roles[family]

    def declare(self, parent: pulumi.ComponentResource, name: str, grants: list[Grant], bucket: ToolBucket) -> Credentials:
        child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        assert bucket.arn is not None
        arns = {}
        for grant in grants:
            role = self.role(parent, grant.service_account, grant.purpose)
            aws.iam.RolePolicy(
                f"{grant.service_account}-bucket-access",
                role=role.id,
                policy=bucket.arn.apply(lambda arn, g=grant: bucket_policy_document(arn, bucket.prefix, g.actions, self.kms_key_arn)),
                opts=child,
            )
            arns[grant.service_account] = role.arn
        return Credentials(role_arns=arns)


def instance_policy(service_arns: list[str], zone_id: str, record_names: list[str], group_arns: list[str],
                    secret_arns: list[str] = ()) -> str:
    """What a fleet's instances do besides their bucket: their own Cloud Map records, their own
    group's lifecycle hook, their own secrets. Cloud Map changes the namespace's Route 53 records
    with the caller's permissions (Cloud Map developer guide, "Using identity-based policies":
    Route 53 permissions are required for DNS namespaces); the condition limits those to the
    fleet's own record names (route53:ChangeResourceRecordSetsNormalizedRecordNames)."""
    # A fleet nobody calls (monitoring) has no service: an empty Resource list is a malformed
    # policy to IAM, so those statements are left out.
    statements = [] if not service_arns else [
        {"Sid": "OwnCloudMapServices", "Effect": "Allow", "Action": ["servicediscovery:DeregisterInstance", "servicediscovery:RegisterInstance"],
         "Resource": sorted(service_arns)},
        {"Sid": "OwnRecords", "Effect": "Allow", "Action": ["route53:ChangeResourceRecordSets"], "Resource": [f"arn:aws:route53:::hostedzone/{zone_id}"],
         "Condition": {"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(record_names)}}},
        {"Sid": "NamespaceZone", "Effect": "Allow", "Action": ["route53:GetHostedZone"], "Resource": [f"arn:aws:route53:::hostedzone/{zone_id}"]},
    ]
    statements += [
        {"Sid": "OwnLifecycleHook", "Effect": "Allow", "Action": ["autoscaling:CompleteLifecycleAction"], "Resource": sorted(group_arns)},
    ]
    if secret_arns:
        statements.append({"Sid": "OwnSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": sorted(secret_arns)})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
