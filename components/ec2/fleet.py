"""One fleet: a launch template and an Auto Scaling group across the configured subnets.

The launch template: the AMI (an ami- id, or a public SSM parameter EC2 resolves at each launch),
IMDSv2 only, an encrypted root volume, no public address, no SSH key (Session Manager or nothing),
the family's instance profile and security group, and the fleet's user data.

The group: instances spread over every configured subnet (zone), replaced when the load
balancer's health check fails (health check type ELB) once the boot grace period is over; a
terminating lifecycle hook from the first instance on (`initial_lifecycle_hook`: a hook added
after the group exists would miss the instances launched before it) whose timeout covers the
tools' stop grace period (the flush); a version or config change replaces the instances by an
instance refresh (topology.refresh_percentages says how many stay healthy).

Every input name and nesting here is pulumi_aws 7.51.1's (ec2.LaunchTemplateArgs with
LaunchTemplateMetadataOptionsArgs, LaunchTemplateBlockDeviceMappingEbsArgs,
LaunchTemplateNetworkInterfaceArgs; autoscaling.GroupArgs with GroupInitialLifecycleHookArgs and
GroupInstanceRefreshPreferencesArgs), and the strict mocks (tools/engine.py) check each one
against those Args classes on every plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.core.config import Ec2Config, Ec2Fleet
from components.ec2 import topology
from components.ec2.topology import Fleet

LIFECYCLE_HOOK = "drain"
# The agent deregisters, stops the tools with their grace period and completes the hook; the
# hook's timeout adds a margin for Docker and the API calls. If it expires, termination proceeds.
HOOK_MARGIN_SECONDS = 90
# Installing Docker and Compose, pulling the images and joining the ring before /ready answers.
BOOT_GRACE_SECONDS = 600


@dataclass(frozen=True)
class FleetInputs:
    fleet: Fleet
    settings: Ec2Fleet
    group_name: str
    instance_profile_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    user_data: pulumi.Input[str]  # base64, as the launch template takes it
    target_group_arns: list[pulumi.Output[str]]
    stop_grace_seconds: int
    # Labels of the fleet's workloads, as tags (the compactor names its bucket for the policy pack).
    labels: dict[str, str]


def image_id(ami: str) -> str:
    """An ami- id as is; an SSM parameter path as EC2 resolves it at launch (`resolve:ssm:`)."""
    return ami if ami.startswith("ami-") else f"resolve:ssm:{ami}"


class FleetGroup(pulumi.ComponentResource):
    """Outputs: `group_name`, `launch_template_id`."""

    def __init__(self, name: str, ec2: Ec2Config, inputs: FleetInputs, provider: aws.Provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:ec2:FleetGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        f = inputs.fleet
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            description=f"obs-storage {f.name}",
            image_id=image_id(ec2.ami),
            instance_type=inputs.settings.instance_type,
            iam_instance_profile={"arn": inputs.instance_profile_arn},
            metadata_options={
                "http_endpoint": "enabled",
                # IMDSv2 only: a token-less request (the SSRF route to the role's credentials) fails.
                "http_tokens": "required",
                # Host-network containers reach IMDS without a hop; a Compose network adds one.
                "http_put_response_hop_limit": 1 if f.host_network else 2,
            },
            block_device_mappings=[{
                "device_name": ec2.root_device_name,
                "ebs": {"volume_size": ec2.root_volume_gi, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
            }],
            network_interfaces=[{"device_index": 0, "associate_public_ip_address": "false", "security_groups": [inputs.security_group_id]}],
            user_data=inputs.user_data,
            # New instances (scale-out, replacements) use the newest version.
            update_default_version=True,
            tag_specifications=[{"resource_type": "instance", "tags": {"Name": inputs.group_name, "obs-storage:fleet": f.name}}],
            opts=child,
        )
        size = inputs.settings.size
        low, high = topology.refresh_percentages(size, f.stop_first)
        self.group = aws.autoscaling.Group(
            f"{name}-group",
            # Named: the instances' agent completes the lifecycle hook of this group by name, and
            # the instance role names it; a generated name would be known only after the user data.
            name=inputs.group_name,
            min_size=size,
            max_size=size,
            desired_capacity=size,
            vpc_zone_identifiers=[ec2.subnets[zone] for zone in sorted(ec2.subnets)],
            launch_template={"id": self.launch_template.id, "version": self.launch_template.latest_version.apply(str)},
            target_group_arns=inputs.target_group_arns or None,
            health_check_type="ELB" if inputs.target_group_arns else "EC2",
            health_check_grace_period=BOOT_GRACE_SECONDS,
            initial_lifecycle_hooks=[{
                "name": LIFECYCLE_HOOK,
                "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "heartbeat_timeout": inputs.stop_grace_seconds + HOOK_MARGIN_SECONDS,
                "default_result": "CONTINUE",
            }],
            instance_refresh={
                "strategy": "Rolling",
                "preferences": {"min_healthy_percentage": low, "max_healthy_percentage": high, "instance_warmup": str(BOOT_GRACE_SECONDS)},
            },
            tags=[{"key": "obs-storage:fleet", "value": f.name, "propagate_at_launch": True}]
            + [{"key": k, "value": v, "propagate_at_launch": True} for k, v in sorted(inputs.labels.items())],
            opts=child,
        )
        self.register_outputs({"group_name": self.group.name, "launch_template_id": self.launch_template.id})
