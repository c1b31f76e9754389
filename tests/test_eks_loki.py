"""components/eks/loki.py: what the Loki chart's values promise beyond the config renderer."""

from __future__ import annotations

from components.eks import loki as eks_loki
from tests.test_eks import chart


def _values(result) -> dict:
    return chart(result, "loki").inputs["values"]


def test_loki_reaches_s3_over_tls(plan):
    # The chart hands loki.storage.s3 to Loki's s3 block (loki-18.11.0 charts/loki/templates/
    # _helpers.tpl, loki.lokiStorageConfig), whose `insecure` means "Disable https on s3
    # connection" (grafana/loki v3.7.6 pkg/storage/chunk/client/aws/s3_storage_client.go).
    s3 = _values(plan("staging"))["loki"]["storage"]["s3"]
    assert s3["insecure"] is False and s3["region"] == "ap-northeast-2"


def test_the_canary_runs_where_its_alerts_look_for_it(plan):
    # renderers/alerts.py watches the canary's job (monitoring.scope: canary) whenever Loki runs:
    # without the canary those alerts would have nothing to read.
    values = _values(plan("staging"))
    assert values["lokiCanary"]["enabled"] is True and values["lokiCanary"]["kind"] == "Deployment"


def test_a_cache_of_any_size_is_on_and_zero_is_off():
    assert eks_loki._cache(0) == {"enabled": False}
    assert eks_loki._cache(1) == {"enabled": True, "allocatedMemory": 1}
    assert eks_loki._cache(2048) == {"enabled": True, "allocatedMemory": 2048}
