"""The cost model's Tempo storage, through tools.cost's public functions: what the replication
factor multiplies and what it does not, with expected values from the inputs and from how Tempo
writes blocks (every ingester of a trace's replica set flushes its own copy; the compactor merges
them into one copy)."""

from __future__ import annotations

import pytest

from components.core import config
from tests.conftest import aws_stack_config
from tools.cost import prices, topology, usage

HOUR = 3600


def tempo_cfg(delete_delay_hours: int) -> config.StackConfig:
    return aws_stack_config(tempo={"retentionDays": 14, "deleteDelayHours": delete_delay_hours})


def blocks(load: usage.ToolLoad) -> usage.Stream:
    (stream,) = load.streams
    return stream


@pytest.mark.parametrize("rf", [1, 3])
def test_tempo_pending_copies_scale_with_the_replication_factor(rf):
    a = prices.assumptions()
    topo = topology.TempoTopology(ingesters=3, replication_factor=rf, compaction_window_s=HOUR)
    load = usage.tempo_load(tempo_cfg(delete_delay_hours=1), 100.0, a, topo)
    gb_per_day = load.stored_gb_per_day
    # 100 GB/day received, stored at the assumed ratio: one copy after compaction.
    assert gb_per_day == pytest.approx(100.0 * a["tempo.stored_ratio"])
    # Before compaction each of the rf ingesters' copies of a block lives for the compaction
    # window (1 h) plus compacted_block_retention (1 h): rf * 2/24 of a day's data at any time.
    assert blocks(load).pending_gb == pytest.approx(gb_per_day * rf * 2 / 24)


def test_tempo_replication_multiplies_pending_copies_not_the_data_kept():
    a = prices.assumptions()
    single = usage.tempo_load(tempo_cfg(4), 50.0, a, topology.TempoTopology(ingesters=3, replication_factor=1, compaction_window_s=HOUR))
    triple = usage.tempo_load(tempo_cfg(4), 50.0, a, topology.TempoTopology(ingesters=3, replication_factor=3, compaction_window_s=HOUR))
    assert triple.stored_gb_per_day == pytest.approx(single.stored_gb_per_day)
    assert blocks(triple).pending_gb == pytest.approx(3 * blocks(single).pending_gb)
    # The delete delay counts in hours: 1 h window + 4 h delay = 5/24 of a day.
    assert blocks(single).pending_gb == pytest.approx(single.stored_gb_per_day * 5 / 24)
    # Data is kept until retention plus the delete delay: 14 days + 4 h.
    assert blocks(single).life_days == pytest.approx(14 + 4 / 24)
