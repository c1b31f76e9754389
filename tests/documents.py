"""The project's documentation as the tests read it: README.md (the five-minute overview) and the
documents in docs/ that hold the rest. Tests that check what a document says read the one
document that says it; tests of commands and links read all of them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def paths() -> list[Path]:
    """README.md first, then every document under docs/."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def read(name: str) -> str:
    """One document by its path from the repository root: "README.md", "docs/cost.md"."""
    return (ROOT / name).read_text()


def everything() -> str:
    return "\n".join(path.read_text() for path in paths())


def block_after(text: str, heading: str) -> str:
    """The first code block after `heading` in `text`."""
    rest = text[text.index(heading):]
    return re.search(r"```\w*\n(.*?)```", rest, re.S).group(1)


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text: lower case, punctuation other than
    '-' and '_' dropped, spaces turned into '-', a repeated heading numbered from -1."""
    found: set[str] = set()
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        match = None if fence else re.match(r"#{1,6} (.+)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            numbered, n = slug, 0
            while numbered in found:
                n += 1
                numbered = f"{slug}-{n}"
            found.add(numbered)
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links of a document whose file or heading does not exist."""
    text = path.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked.read_text())):
            broken.append(target)
    return broken
