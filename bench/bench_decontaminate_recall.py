"""Decontamination recall and false positives per edit class of issue #15, on real items planted in real
documents (the same cases as tests/filters/decontaminate/test_detect_edits.py), and the clean real documents
flagged. Prints a Markdown table; run from the repository root:

    python bench/bench_decontaminate_recall.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_REPO), str(_REPO / "tests")]

from helpers_decontaminate import (  # noqa: E402
    code_texts,
    edit_class_cases,
    news_texts,
    recall_and_false_positives,
    suite_index,
    templated_cases,
    templated_eval_file,
    web_texts,
)

from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig  # noqa: E402
from filters.decontaminate.detect import detect  # noqa: E402
from filters.decontaminate.index import DecontaminationIndex, build_index  # noqa: E402


def main() -> None:
    web = web_texts()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        index = suite_index(folder)
        cases = edit_class_cases(web, code_texts(), per_class=800)
        path, bare = templated_eval_file(folder, per_benchmark=50, seed_name="decontaminate-templated")
        config = DecontaminateConfig(
            evals=[EvalSetConfig(name="templated", paths=[str(path)], text_fields=["prompt"], id_field="id")]
        )
        templated_index = DecontaminationIndex.load(build_index(config, folder, folder)[0])
        rows = [(name, index, c) for name, c in cases.items()]
        rows.append(
            (
                "templated eval field, bare item in the page",
                templated_index,
                templated_cases(web, bare, "templated"),
            )
        )
        print("| class | planted | recall | false positives | other items inside the planted text |")
        print("|---|---|---|---|---|")
        for name, idx, c in rows:
            recall, _, overlapping, false = recall_and_false_positives(idx, c)
            print(f"| {name} | {len(c)} | {recall:.3f} | {len(false)} | {len(overlapping)} |", flush=True)
        clean = web + news_texts() + code_texts()
        flagged = sum(1 for text in clean if detect(index, text))
        print(f"\nclean real documents (web, news, code) flagged: {flagged} of {len(clean)}")


if __name__ == "__main__":
    main()
