"""components/eks/thanos.py: which Thanos pods read the bucket, and the store gateway's index cache,
in sidecar and in receive mode."""

from __future__ import annotations

import pytest

from components.core.renderers import thanos
from tests.conftest import tool_overrides

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SECRET = "kubernetes:core/v1:Secret"


def _pods(result) -> dict[str, dict]:
    return {w.inputs["metadata"]["name"]: w.inputs["spec"]["template"]["spec"] for w in result.by_type(DEPLOYMENT) + result.by_type(STATEFUL_SET)
            if w.inputs["metadata"]["name"].startswith("thanos-")}


@pytest.mark.parametrize("mode, readers", [
    ("sidecar", {"thanos-store", "thanos-compact"}),
    ("receive", {"thanos-store", "thanos-compact", "thanos-receive"}),
])
def test_exactly_the_pods_that_read_the_bucket_mount_its_config_read_only(plan, plan_with, mode, readers):
    result = plan("staging") if mode == "sidecar" else plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"}))
    pods = _pods(result)
    assert readers < set(pods) and {"thanos-query", "thanos-query-frontend"} <= set(pods)
    (secret,) = [s for s in result.by_type(SECRET) if s.inputs["metadata"]["name"] == "thanos-objstore"]
    for name, pod in pods.items():
        (container,) = pod["containers"]
        flag = [a for a in container["args"] if a.startswith("--objstore.config-file=")]
        mounts = [m for m in container["volumeMounts"] if m["name"] == "objstore"]
        # A pod given --objstore.config-file finds the file through the thanos-objstore Secret,
        # mounted read-only where the flag points; Query and its frontend never touch the bucket
        # and get neither (the Secret names the bucket).
        assert bool(flag) == (name in readers), name
        if name in readers:
            (mount,) = mounts
            assert flag == [f"--objstore.config-file={mount['mountPath']}/objstore.yaml"] == [f"--objstore.config-file={thanos.OBJSTORE_FILE}"], name
            assert mount["readOnly"] is True, name
            assert {"name": "objstore", "secret": {"secretName": secret.inputs["metadata"]["name"]}} in pod["volumes"], name
        else:
            assert mounts == [] and not [v for v in pod["volumes"] if v["name"] == "objstore"], name


@pytest.mark.parametrize("mb, flag", [(256, "--index-cache-size=256MB"), (0, None)])
def test_the_store_gateway_index_cache_is_the_configured_size_or_thanos_default(plan_with, mb, flag):
    # aws.thanosIndexCacheMb: 0 keeps Thanos' own default (Pulumi.yaml), so no flag at all.
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "thanosIndexCacheMb": mb}})
    (container,) = _pods(result)["thanos-store"]["containers"]
    sized = [a for a in container["args"] if a.startswith("--index-cache-size")]
    assert sized == ([flag] if flag else [])


def test_a_sidecar_spoke_of_a_receive_hub_uploads_and_does_not_remote_write():
    from tools import engine

    # The hub runs Receive and exports its URL; a spoke in sidecar mode still uploads blocks
    # through its sidecar, and remote-writing too would send every sample to the hub twice.
    url = "https://thanos-receive.staging.internal.example.com/api/v1/receive"
    hub = engine.run("staging", tool_overrides("staging", thanos={"mode": "receive", "receiveUrl": url}))
    assert hub.outputs["thanosHub"]["receiveUrl"] == url
    spoke = engine.run("staging-batch", stack_outputs={"organization/obs-storage/staging": hub.outputs})
    (kps,) = [c for c in spoke.by_type("kubernetes:helm.sh/v4:Chart") if c.inputs["name"] == "kps"]
    spec = kps.inputs["values"]["prometheus"]["prometheusSpec"]
    assert "remoteWrite" not in spec and spec["thanos"]["objectStorageConfig"]
