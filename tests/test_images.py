"""Every health check, entrypoint, user and volume of the Docker targets uses only what the pinned
image provides (components/core/versions.py ImageFacts, each fact read at the pinned tag).

The Loki 3.6+ and Tempo 2.10+ images dropped busybox; a `wget` health check or a `/bin/sh`
entrypoint in them never runs. These tests fail for any such use, and for a version bump whose
image facts were not read again.
"""

from __future__ import annotations

import pytest

from components.core import versions
from tests.conftest import tool_overrides

IMAGES = {versions.image(versions.DEFAULT_PINS, key): pin for key, pin in versions.DEFAULT_PINS.items() if pin.kind == "image"}
RECEIVE = {"mode": "receive", "receiveReplicationFactor": 3}


def _workloads(result) -> list[dict]:
    """(name, image, health test, entrypoint, user, mounts) of each container or service."""
    out = []
    for c in result.by_type("docker:index/container:Container"):
        image = next(r.inputs["name"] for r in result.by_type("docker:index/remoteImage:RemoteImage") if r.urn in c.depends_on)
        out.append({
            "name": c.inputs["name"], "image": image, "health": (c.inputs.get("healthcheck") or {}).get("tests"),
            "entrypoint": c.inputs.get("entrypoints"), "user": c.inputs.get("user"),
            "mounts": [(v["volumeName"], v["containerPath"]) for v in c.inputs.get("volumes", [])],
        })
    for s in result.by_type("docker:index/service:Service"):
        spec = s.inputs["taskSpec"]["containerSpec"]
        out.append({
            "name": s.inputs["name"], "image": spec["image"], "health": (spec.get("healthcheck") or {}).get("tests"),
            "entrypoint": spec.get("commands"), "user": spec.get("user"),
            "mounts": [(m["source"], m["target"]) for m in spec.get("mounts", [])],
            # Swarm starts it again only hours after it exits: a one-shot command (ring-defrag).
            "one_shot": (s.inputs["taskSpec"].get("restartPolicy") or {}).get("delay", "0s") == "86400s",
        })
    return out


@pytest.fixture(params=[("local", None), ("prod", None), ("local", RECEIVE), ("prod", RECEIVE)], ids=["local", "prod", "local-receive", "prod-receive"])
def every_workload(request, plan, plan_with):
    stack, thanos = request.param
    result = plan(stack) if thanos is None else plan_with(stack, tool_overrides(stack, thanos=thanos))
    return _workloads(result)


def test_default_image_facts_were_read_for_the_pinned_version():
    for key, pin in versions.DEFAULT_PINS.items():
        if pin.kind == "image":
            assert pin.facts is not None, f"{key}: record what the image provides (versions.ImageFacts)"
            assert pin.facts.checked == pin.version, f"{key}: {pin.version} pinned, facts read for {pin.facts.checked}: read them again"
            assert pin.facts.user.isdigit() and pin.facts.source, key


def test_health_checks_run_what_the_image_has(every_workload):
    for w in every_workload:
        facts = IMAGES[w["image"]].facts
        if w["health"] is None and w.get("one_shot"):
            continue  # it exits when done: a health check would have nothing to watch
        if w["health"] is None:
            # Only an image with nothing that could probe it may go without a health check.
            assert not facts.shell and len(facts.executables) == 1, f"{w['name']}: {w['image']} could run a health check"
            continue
        kind, executable = w["health"][0], w["health"][1]
        assert kind == "CMD", f"{w['name']}: CMD-SHELL needs a shell"
        assert executable in facts.executables, f"{w['name']}: {executable} is not in {w['image']} ({facts.source})"


def test_entrypoints_run_what_the_image_has(every_workload):
    for w in every_workload:
        if w["entrypoint"]:
            facts = IMAGES[w["image"]].facts
            assert w["entrypoint"][0] in facts.executables, f"{w['name']}: {w['entrypoint'][0]} is not in {w['image']}"


def test_volumes_are_writable_by_the_user_that_writes_them(every_workload):
    # A volume takes the owner and mode of the image directory it is first mounted on; a mount
    # where the image has no directory leaves it root-owned. So every volume must be mounted on a
    # directory the image's user owns, by at least one workload, and any other workload sharing it
    # must run as that user.
    by_volume: dict[str, list[dict]] = {}
    for w in every_workload:
        for volume, path in w["mounts"]:
            by_volume.setdefault(volume.replace("{{.Task.Slot}}", "N"), []).append({**w, "path": path})
    assert by_volume
    for volume, users in by_volume.items():
        owners = [u for u in users if u["path"] in IMAGES[u["image"]].facts.writable]
        assert owners, f"{volume}: no workload mounts it where its image has a writable directory"
        if owners[0]["path"] == "/tmp":
            continue  # mode 1777: every user may write
        owner_uid = IMAGES[owners[0]["image"]].facts.user
        for u in users:
            uid = (u["user"] or IMAGES[u["image"]].facts.user).split(":")[0]
            assert uid in (owner_uid, "0"), f"{volume}: {u['name']} runs as {uid}, the volume belongs to {owner_uid}"


def test_no_workload_relies_on_a_shell(every_workload):
    for w in every_workload:
        for part in (w["entrypoint"] or [])[:1] + (w["health"] or [])[:2]:
            assert not part.endswith("/sh") and part != "CMD-SHELL", f"{w['name']}: {part}"
