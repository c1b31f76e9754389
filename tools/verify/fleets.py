"""EC2 fleets (`aws.platform: ec2`): what Auto Scaling, Cloud Map and the load balancer say about
the running instances, compared with each other.

- every fleet's Cloud Map service lists exactly the group's InService, Healthy instances (an
  instance registers at boot and deregisters before termination: probes/ec2_agent.py), with
  the address EC2 gives that instance;
- every target group of the internal load balancer has targets, all of them healthy.

Needs autoscaling:DescribeAutoScalingGroups, servicediscovery:ListInstances,
ec2:DescribeInstances and elasticloadbalancing:DescribeTargetHealth.
"""

from __future__ import annotations

from tools.verify.common import Report, Stack, attempt

PART = "tools"


def check(stack: Stack, report: Report) -> None:
    fleets = stack.outputs.get("fleets") or {}
    if not fleets:
        return
    autoscaling, discovery, ec2, elb = (stack.aws(s) for s in ("autoscaling", "servicediscovery", "ec2", "elbv2"))
    for name, fleet in sorted(fleets.items()):
        outcome, response = attempt(lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet["group"]]))
        groups = response.get("AutoScalingGroups", []) if outcome == "allowed" else []
        if not report.check(PART, name, len(groups) == 1, f"group {fleet['group']} exists", f"{outcome} {response if outcome != 'allowed' else 'not found'}"):
            continue
        healthy = sorted(i["InstanceId"] for i in groups[0]["Instances"] if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy")
        report.check(PART, name, bool(healthy), f"{len(healthy)} healthy InService instance(s)", "no healthy InService instance")
        if "serviceId" not in fleet:
            continue
        outcome, response = attempt(lambda: discovery.list_instances(ServiceId=fleet["serviceId"]))
        if outcome != "allowed":
            report.failed(PART, name, f"Cloud Map service {fleet['service']} not readable: {outcome} {response}")
            continue
        registered = {i["Id"]: i.get("Attributes", {}).get("AWS_INSTANCE_IPV4") for i in response["Instances"]}
        report.check(PART, name, sorted(registered) == healthy, f"Cloud Map {fleet['service']} lists exactly the healthy instances",
                     f"registered {sorted(registered)}, healthy {healthy}")
        if healthy:
            outcome, response = attempt(lambda: ec2.describe_instances(InstanceIds=healthy))
            addresses = {i["InstanceId"]: i.get("PrivateIpAddress") for r in response.get("Reservations", []) for i in r["Instances"]} if outcome == "allowed" else {}
            wrong = sorted(i for i in healthy if i in registered and registered[i] != addresses.get(i))
            report.check(PART, name, outcome == "allowed" and not wrong, f"Cloud Map {fleet['service']} records carry the instances' private addresses",
                         f"{outcome}: wrong address for {wrong}" if outcome == "allowed" else f"instances not readable: {outcome} {response}")
    arns = sorted({arn for fleet in fleets.values() for arn in fleet.get("targetGroups", [])})
    for arn in arns:
        subject = arn.rsplit(":", 1)[-1]
        outcome, response = attempt(lambda: elb.describe_target_health(TargetGroupArn=arn))
        if outcome != "allowed":
            report.failed(PART, subject, f"target health not readable: {outcome} {response}")
            continue
        states = {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in response["TargetHealthDescriptions"]}
        unhealthy = {i: s for i, s in states.items() if s != "healthy"}
        report.check(PART, subject, bool(states) and not unhealthy, f"{len(states)} target(s), all healthy",
                     f"targets {states}" if states else "no targets")
