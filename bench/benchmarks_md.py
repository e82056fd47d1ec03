"""Writing a benchmark's section of BENCHMARKS.md: the section under `heading` is replaced by the new body
(or added at the end), keeping a hand-written `### Findings` part that closes it."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
FINDINGS = "### Findings"


def write_section(heading: str, section: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    body = section.rstrip("\n") + "\n"
    if heading not in text:
        BENCHMARKS.write_text(text.rstrip("\n") + "\n\n" + body)
        return
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    end = len(text) if end == -1 else end + 1
    old = text[start:end]
    if FINDINGS in old:
        body += "\n" + old[old.index(FINDINGS) :].rstrip("\n") + "\n"
    following = text[end:]
    BENCHMARKS.write_text(text[:start] + body + ("\n" + following if following else ""))
