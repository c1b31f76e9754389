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


# The ranges compare whole release numbers, major, minor and patch each in its place: 2.7.4 is not
# 3.7.4, 3.7.12 is not 3.12.x, 3.12.0 is not 3.0.0.
@pytest.mark.parametrize("version", ["3.6.16", "3.7.7", "3.7.8", "2.7.4", "3.7.12", "3.12.0"])
def test_fixed_loki_versions_are_accepted(version):
    assert versions.version_problem("loki", version) is None


def test_a_charts_pin_is_no_image():
    pins = versions.resolve({})
    assert versions.image(pins, "loki") == "grafana/loki:3.7.8"
    with pytest.raises(AssertionError, match="loki-chart"):
        versions.image(pins, "loki-chart")


@pytest.mark.parametrize("key", sorted(k for k, pin in versions.DEFAULT_PINS.items() if pin.kind == "image"))
def test_an_image_has_a_shell_exactly_when_its_facts_list_one(key):
    # Both facts come from the same Dockerfile: a shell the image has is one of the executables a
    # health check may call, and one it lacks cannot be (tests/test_images.py relies on both).
    facts = versions.DEFAULT_PINS[key].facts
    assert facts.shell == any(path.rsplit("/", 1)[-1] == "sh" for path in facts.executables), (key, facts.executables)
