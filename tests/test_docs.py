"""The documentation holds together: README.md stays an overview that leads to every document in
docs/, and no link in any of them points at a file or heading that does not exist."""

from __future__ import annotations

import re

import pytest

from tests import documents

# Read in five minutes: the overview, the two commands, the stacks, where to go next.
README_MAX_LINES = 120


@pytest.mark.parametrize("path", documents.paths(), ids=lambda p: p.name)
def test_every_link_resolves(path):
    assert documents.broken_links(path) == [], path.name


def test_the_link_check_refuses_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\n## Some heading (`make x`)\n\n[ok](b.md#b-title) [self](#some-heading-make-x)\n")
    (tmp_path / "b.md").write_text("# B title\n\n[gone](c.md) [bad](a.md#no-such-heading) [web](https://example.com/x#y)\n")
    assert documents.broken_links(tmp_path / "a.md") == []
    assert documents.broken_links(tmp_path / "b.md") == ["c.md", "a.md#no-such-heading"]


def test_anchors_number_repeated_headings_and_skip_code_blocks():
    text = "# Tests\n\n## Tests\n\n```sh\n# not a heading\n```\n"
    assert documents.anchors(text) == {"tests", "tests-1"}


def test_readme_is_short_and_leads_to_every_document():
    readme = documents.read("README.md")
    assert len(readme.splitlines()) <= README_MAX_LINES
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", readme))
    assert linked == {f"docs/{p.name}" for p in documents.DOCS.glob("*.md")}
    for command in ("make up", "make test"):
        assert f"\n{command} " in readme, command
