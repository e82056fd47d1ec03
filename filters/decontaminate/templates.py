"""Prompt templates removed from eval fields before indexing, so a bare question in a training page is measured
against the question, not against "Question: ... Answer:" (the labels of lm-evaluation-harness and OLMES).

The default patterns are part of the index's content hash: changing them rebuilds cached indexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from filters.decontaminate.config import EvalSetConfig

# Labels that name a field of a prompt; not `Input:` or `Output:`, which items' own examples use.
_LABELS = "Question|Q|Answer|A|Passage|Context|Problem|Solution|Choices|Options|Premise|Hypothesis|Goal"
DEFAULT_TEMPLATE_PATTERNS = (
    # MMLU's few-shot header (Hendrycks et al. 2021), as the harnesses write it.
    r"The following are multiple choice questions(?: \(with answers\))? about [^\n.]*\.",
    # A field label opening a line or following a sentence: "Question:", "Q:", "A:".
    rf"(?m)(?:^|(?<=[.?!]))[ \t]*(?:{_LABELS})[ \t]*:",
    # Instruction-tuning headers: "### Instruction:", "### Response:".
    r"(?m)^[ \t]*#+[ \t]*(?:Instruction|Input|Response)[ \t]*:",
    # A choice label opening a line: "A.", "(B)", "C)"; not "I." and on, which number statements.
    r"(?m)^[ \t]*\(?[A-H][.)](?=[ \t])",
)


def field_stripper(benchmark: EvalSetConfig) -> Callable[[str, str], str]:
    """`strip(field_name, text)`: the text without the benchmark's declared templates, then the defaults."""
    rules = [
        (set(rule.fields), rule.prefix, rule.suffix, re.compile(rule.pattern) if rule.pattern else None)
        for rule in benchmark.strip
    ]
    defaults = [re.compile(p) for p in DEFAULT_TEMPLATE_PATTERNS] if benchmark.strip_templates else []

    def strip(field_name: str, text: str) -> str:
        for fields, prefix, suffix, pattern in rules:
            if fields and field_name not in fields:
                continue
            text = text.strip()
            if prefix and text.startswith(prefix):
                text = " " + text[len(prefix) :]
            if suffix and text.endswith(suffix):
                text = text[: -len(suffix)] + " "
            if pattern:
                text = pattern.sub(" ", text)
        for pattern in defaults:
            text = pattern.sub(" ", text)
        return text

    return strip
