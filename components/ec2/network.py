"""Discovery and traffic of the ec2 platform.

- `Discovery`: a Cloud Map private DNS namespace in the VPC and one multi-value A-record service
  per discoverable fleet; instances register themselves at boot and deregister before they stop
  (probes/ec2_agent.py). No Cloud Map health check: its checks are public Route 53 checks that
  cannot reach private instances; the load balancer's health checks replace broken instances.
- `Traffic`: one security group per fleet family (instances), one for the load balancer and one
  for Grafana's database; the rules between them come from `topology.flows` and reference groups,
  never CIDRs, except the configured senders on the load balancer. An internal Network Load
  Balancer with a listener and a target group per entry of `topology.LISTENERS`.

Inputs as pulumi_aws 7.51.1 defines them (servicediscovery.PrivateDnsNamespaceArgs, ServiceArgs
with ServiceDnsConfigArgs; lb.LoadBalancerArgs, TargetGroupArgs with TargetGroupHealthCheckArgs,
ListenerArgs; vpc.SecurityGroupIngressRuleArgs / EgressRuleArgs), checked by the strict mocks.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from components.core.config import Ec2Config
from components.ec2 import topology
from components.ec2.topology import Fleet, Listener

# Seconds a DNS answer of a fleet's service may be cached: a replaced instance's address leaves
# the answers within this long after it deregistered.
DNS_TTL = 10


class Discovery(pulumi.ComponentResource):
    """Outputs: `namespace` (domain), `services` (fleet -> service id and ARN)."""

    def __init__(self, name: str, domain: str, vpc_id: str, fleets: list[Fleet], provider: aws.Provider,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:ec2:Discovery", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.domain = domain
        self.namespace = aws.servicediscovery.PrivateDnsNamespace(
            f"{name}-namespace", name=domain, vpc=vpc_id, description="obs-storage fleets: one multi-value record per fleet", opts=child)
        self.services: dict[str, aws.servicediscovery.Service] = {}
        for fleet in fleets:
            if not fleet.discoverable:
                continue
            self.services[fleet.name] = aws.servicediscovery.Service(
                f"{name}-{fleet.name}",
                name=fleet.name,
                dns_config={
                    "namespace_id": self.namespace.id,
                    # MULTIVALUE: every registered instance's address in one answer (memberlist
                    # joins all of them; Thanos' dns+ endpoints reach each).
                    "routing_policy": "MULTIVALUE",
                    "dns_records": [{"type": "A", "ttl": DNS_TTL}],
                },
                # The agent deregisters an instance before it stops; an instance that vanished
                # without stopping stays until the next `register` with its id or a manual one.
                force_destroy=True,
                opts=child,
            )
        self.register_outputs({"namespace": domain, "services": {k: s.id for k, s in self.services.items()}})


def _ingress(name: str, group: pulumi.Input[str], port: int, protocol: str, parent: pulumi.Resource, provider: aws.Provider,
             source_group: Optional[pulumi.Input[str]] = None, cidr: Optional[str] = None, description: str = "") -> None:
    # IPv4 only: the config refuses an IPv6 sender network (the internal load balancer has no
    # IPv6 address; components/core/config.py, Ec2Senders).
    aws.vpc.SecurityGroupIngressRule(
        name, security_group_id=group, ip_protocol=protocol, from_port=port, to_port=port,
        referenced_security_group_id=source_group, cidr_ipv4=cidr,
        description=description, opts=pulumi.ResourceOptions(parent=parent, provider=provider))


class Traffic(pulumi.ComponentResource):
    """Outputs: `groups` (family -> security group id), `target_groups` (listener -> ARN),
    `dns_name` of the internal load balancer."""

    def __init__(self, name: str, ec2: Ec2Config, fleets: list[Fleet], provider: aws.Provider, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:ec2:Traffic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        families = sorted({f.family for f in fleets})
        self.groups = {
            family: aws.ec2.SecurityGroup(f"{name}-{family}", vpc_id=ec2.vpc_id, description=f"obs-storage {family} instances", opts=child)
            for family in families
        }
        for family, group in self.groups.items():
            # Out to S3, the package mirror, the image registries and the AWS APIs (through the
            # VPC's NAT or endpoints); nothing comes in that a rule below does not name.
            aws.vpc.SecurityGroupEgressRule(f"{name}-{family}-egress", security_group_id=group.id, ip_protocol="-1", cidr_ipv4="0.0.0.0/0",
                                            description="S3, packages, images, AWS APIs", opts=child)
        for flow in topology.flows(set(families)):
            for port in flow.ports:
                _ingress(f"{name}-{flow.target}-from-{flow.source}-{flow.protocol}-{port}", self.groups[flow.target].id, port, flow.protocol, self, provider,
                         source_group=self.groups[flow.source].id, description=f"{flow.source} to {flow.target}")
        listeners = [l for l in topology.LISTENERS if l.family in families]
        self.balancer_group = aws.ec2.SecurityGroup(f"{name}-nlb", vpc_id=ec2.vpc_id, description="obs-storage internal load balancer", opts=child)
        opened: set[tuple[str, int]] = set()
        for listener in listeners:
            for cidr in ec2.senders.cidrs:
                _ingress(f"{name}-nlb-{listener.name}-from-{cidr.replace('/', '-')}", self.balancer_group.id, listener.port, "tcp",
                         self, provider, cidr=cidr, description=f"senders to {listener.name}")
            for sender in ec2.senders.security_groups:
                _ingress(f"{name}-nlb-{listener.name}-from-{sender}", self.balancer_group.id, listener.port, "tcp", self, provider,
                         source_group=sender, description=f"senders to {listener.name}")
            target = self.groups[listener.family]
            for port in sorted({listener.port, listener.health_port} - {p for f, p in opened if f == listener.family}):
                opened.add((listener.family, port))
                _ingress(f"{name}-{listener.family}-from-nlb-{port}", target.id, port, "tcp", self, provider, source_group=self.balancer_group.id, description="load balancer traffic and health checks")
                aws.vpc.SecurityGroupEgressRule(f"{name}-nlb-to-{listener.family}-{port}", security_group_id=self.balancer_group.id, ip_protocol="tcp",
                                                from_port=port, to_port=port, referenced_security_group_id=target.id,
                                                description=f"to {listener.family}", opts=child)
        subnets = [ec2.subnets[zone] for zone in sorted(ec2.subnets)]
        self.balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            # Internal only: senders reach it inside the VPC (or peered networks); the policy pack
            # refuses an internet-facing one. No ip_address_type: an internal load balancer must
            # use ipv4 (CreateLoadBalancer IpAddressType), hence IPv4 sender networks only.
            internal=True,
            subnets=subnets,
            # Security groups can only be attached when the NLB is created (Elastic Load Balancing
            # user guide, "Security groups for your Network Load Balancer").
            security_groups=[self.balancer_group.id],
            enable_cross_zone_load_balancing=True,
            opts=child,
        )
        self.target_groups: dict[str, aws.lb.TargetGroup] = {}
        for listener in listeners:
            self.target_groups[listener.name] = self._target_group(name, ec2.vpc_id, listener, child)
            aws.lb.Listener(f"{name}-{listener.name}", load_balancer_arn=self.balancer.arn, port=listener.port, protocol="TCP",
                            default_actions=[{"type": "forward", "target_group_arn": self.target_groups[listener.name].arn}], opts=child)
        self.register_outputs({"groups": {k: g.id for k, g in self.groups.items()}, "dns_name": self.balancer.dns_name})

    @staticmethod
    def _target_group(name: str, vpc_id: str, listener: Listener, child: pulumi.ResourceOptions) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            f"{name}-{listener.name}",
            port=listener.port,
            protocol="TCP",
            target_type="instance",
            vpc_id=vpc_id,
            # Off: the instances then see the load balancer's address as the source, which their
            # security group admits by the load balancer's group; with client IP preservation
            # (the default for instance targets) they would have to admit every sender.
            preserve_client_ip="false",
            # Queries and pushes in flight finish; the agent has already deregistered from Cloud Map.
            deregistration_delay="60",
            health_check={
                "enabled": True,
                "protocol": "HTTP",
                "port": str(listener.health_port),
                "path": listener.health_path,
                "matcher": "200",
                "interval": 10,
                "healthy_threshold": 3,
                "unhealthy_threshold": 3,
            },
            opts=child,
        )
