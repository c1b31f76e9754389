"""Pins: exact, free of known-bad versions, and documented in the versions table (docs/versions.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.core import versions

VERSIONS_DOC = (Path(__file__).resolve().parent.parent / "docs" / "versions.md").read_text()


@pytest.mark.parametrize("key", sorted(versions.DEFAULT_PINS))
def test_default_pin_is_exact_and_known_good(key):
    pin = versions.DEFAULT_PINS[key]
    assert versions.version_problem(key, pin.version) is None, key
    assert pin.why, f"{key}: say why this version was chosen"
    if pin.kind == "chart":
        assert pin.repo.startswith("https://"), key


@pytest.mark.parametrize("key", sorted(versions.DEFAULT_PINS))
def test_documented_versions_table_matches(key):
    pin = versions.DEFAULT_PINS[key]
    rows = [line for line in VERSIONS_DOC.splitlines() if line.startswith("| ") and f"| {pin.version} |" in line]
    assert any(pin.name in row for row in rows), f"docs/versions.md versions table lacks {pin.name} {pin.version}"


@pytest.mark.parametrize("version", ["3.6.11", "3.6.15", "3.7.0", "3.7.6"])
def test_loki_checksum_versions_are_refused(version):
    assert "21926" in versions.version_problem("loki", version)


@pytest.mark.parametrize("version", ["3.6.16", "3.7.7", "3.7.8"])
def test_fixed_loki_versions_are_accepted(version):
    assert versions.version_problem("loki", version) is None
