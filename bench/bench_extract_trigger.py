"""A learned trigger for design (b) of bench/bench_extract_two_stage.py (issue #15 part 1): resiliparse_body
everywhere, trafilatura `fast` where a small model says it will score higher: on resiliparse_body's container
where one qualifies, on the whole page where none does. The model is a logistic regression (numpy, Newton's
method, L2), one for each kind of page, on cheap features of resiliparse_body's text and of the lexbor tree,
fitted on the tuning half (even indexes) to predict "trafilatura's text finds more wanted snippets / fewer
unwanted ones". It is cost-aware: its logit minus `_COST_WEIGHT` x log(bytes trafilatura would read) is
compared with a threshold per kind of page, the pair chosen on 5-fold out-of-fold scores of the tuning half to
maximize its F1 while the tuning and Readability pages together run at >= `_MIN_RATE_RATIO` x trafilatura's
rate. Two feature sets: resiliparse_body's text alone, and with the tree's (links, list items, markup, the
prose resiliparse's main content left out, the container's stage and share); a trigger pays for its features
on every page. The text-only trigger is also fitted with trafilatura read through design (d)'s front end
(bench/bench_extract_container.py: lxml parse, one-pass container search, options built once), and with the
rate estimated from the bytes each step reads (`_STEP_COSTS`) so that its thresholds do not move with the load.
The held-out half (odd indexes) is scored only for these finished candidates. Page sets and
columns are bench/bench_extract_pruning.py's. By hand:

    taskset -c 0 python bench/bench_extract_trigger.py
"""

from __future__ import annotations

import datetime
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import page_score, snippet_scores  # noqa: E402
from bench_extract_container import fast_options, parsed, qualifying_container, trafilatura_on  # noqa: E402
from bench_extract_pruning import TABLE_HEAD, page_sets, table_row  # noqa: E402
from bench_extract_two_stage import _NON_PROSE_SHARE, container_page, trafilatura_fast  # noqa: E402

from curation.readers.extract import (  # noqa: E402
    _BODY_SELECTORS,
    body_article,
    body_container,
    is_prose,
    trafilatura_precise,
)

# Chosen on the tuning half's out-of-fold F1 (regularization 3-30, cost weight 0.5-2 and both training targets
# were tried; all scored 0.918-0.923 there).
_L2 = 10.0
_COST_WEIGHT = 1.0
_FOLDS = 5
# The rate the thresholds must keep, over trafilatura's in the same run: 3x with a margin for noise.
_MIN_RATE_RATIO = 3.2
# Each step's CPU seconds on a page: per call and per MB of what it reads (the page; trafilatura `fast`: what it
# is given), fitted by `step_costs` on all pages in one run (2026-11-30, taskset -c 0, load average 4-7).
_STEP_COSTS = {
    "body_seconds": (0.853e-3, 0.01136),
    "text_feature_seconds": (0.076e-3, 0.00030),
    "node_feature_seconds": (0.277e-3, 0.00356),
    "front_feature_seconds": (0.134e-3, 0.01040),
    "trafilatura_seconds": (1.574e-3, 0.11267),
    "lxml_trafilatura_seconds": (0.995e-3, 0.06451),
    "precise_seconds": (1.944e-3, 0.07882),
}
_READS = {"trafilatura_seconds": "bytes_read", "lxml_trafilatura_seconds": "lxml_bytes_read"}
_TEXT_FEATURES = (
    "non_prose_share", "non_prose_line_share", "log_chars", "log_lines", "log_longest_non_prose_run",
    "log_non_prose_runs_of_3", "punctuation_share", "digit_share", "ends_non_prose", "starts_non_prose",
)  # fmt: skip
_NODE_FEATURES = (
    "links_per_kchar", "log_links", "log_items_over_paragraphs", "text_of_html", "text_of_lexbor_text",
    "log_html", "main_of_plain_text", "dropped_prose_share", "prose_share_of_plain_text",
)  # fmt: skip
_CONTAINER_FEATURES = ("container_share", "titled", "container_of_body_text", "stage_0", "stage_1", "stage_2")


def text_features(text: str) -> dict[str, float]:
    """How much of resiliparse_body's text is not prose, and how it is laid out."""
    lines = [line for line in text.split("\n") if line.strip()]
    prose = [is_prose(line) for line in lines]
    runs, run = [], 0
    for is_article in prose:
        runs, run = (runs + [run], 0) if is_article else (runs, run + 1)
    runs.append(run)
    chars = max(1, len(text))
    return {
        "non_prose_share": sum(len(line) for line, p in zip(lines, prose) if not p) / chars,
        "non_prose_line_share": prose.count(False) / max(1, len(lines)),
        "log_chars": math.log1p(len(text)),
        "log_lines": math.log1p(len(lines)),
        "log_longest_non_prose_run": math.log1p(max(runs)),
        "log_non_prose_runs_of_3": math.log1p(sum(r >= 3 for r in runs)),
        "punctuation_share": sum(c in ".,;:!?" for c in text) / chars,
        "digit_share": sum(c.isdigit() for c in text) / chars,
        "ends_non_prose": float(bool(lines) and not prose[-1]),
        "starts_non_prose": float(bool(lines) and not prose[0]),
    }


def node_features(text: str, main: str, node) -> dict[str, float]:
    """The node trafilatura would read (the container, or the page's body): links, list items, markup, and
    the prose resiliparse's main content left out of it (`main`: its main content)."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    lexbor_text, html = node.text, node.html
    links = len(node.query_selector_all("a"))
    plain = extract_plain_text(HTMLTree.parse(html), main_content=False)
    kept = set(main.split("\n"))
    prose = [line for line in plain.split("\n") if is_prose(line)]
    return {
        "links_per_kchar": 1000 * links / max(1, len(lexbor_text)),
        "log_links": math.log1p(links),
        "log_items_over_paragraphs": math.log1p(len(node.query_selector_all("li")))
        - math.log1p(len(node.query_selector_all("p"))),
        "text_of_html": len(text) / max(1, len(html)),
        "text_of_lexbor_text": min(2.0, len(text) / max(1, len(lexbor_text))),
        "log_html": math.log1p(len(html)),
        "main_of_plain_text": len(main) / max(1, len(plain)),
        "dropped_prose_share": sum(len(line) for line in prose if line not in kept) / max(1, len(text)),
        "prose_share_of_plain_text": sum(map(len, prose)) / max(1, len(plain)),
    }


def page_record(html: str, truth, options) -> dict:
    """resiliparse_body's text and features of one page, trafilatura `fast` on what it would read (after
    resiliparse_body's container search, and after (d)'s lxml one: `lxml_`), trafilatura (the extractor) on the
    page, each with its CPU seconds and score."""
    import lxml.html
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    start = time.process_time()
    tree = HTMLTree.parse(html)
    text, container = body_article(tree)
    body_seconds = time.process_time() - start
    # the main contents body_article read, again and untimed: an extractor would keep them from its own pass
    whole = extract_plain_text(tree, main_content=True, comments=False)
    main = body_container(tree, whole)[1] if container is not None else whole
    start = time.process_time()
    features = text_features(text)
    text_seconds = time.process_time() - start
    start = time.process_time()
    features |= node_features(text, main, container or tree.body)
    if container is not None:
        stage = next(i for i, s in enumerate(_BODY_SELECTORS) if tree.body.query_selector(s) == container)
        features |= {
            "container_share": len(main) / max(1, len(whole)),
            "titled": float(not text.startswith(main[:40])),
            "container_of_body_text": len(container.text) / max(1, len(tree.body.text)),
        } | {f"stage_{i}": float(stage == i) for i in range(3)}
    node_seconds = time.process_time() - start
    start = time.process_time()
    trafilatura_text = trafilatura_fast(container_page(tree, container) if container is not None else html)
    trafilatura_seconds = time.process_time() - start
    start = time.process_time()
    lxml_tree = parsed(html)
    lxml_container = qualifying_container(lxml_tree) if lxml_tree is not None else None
    front_seconds = time.process_time() - start
    lxml_bytes = len(html) if lxml_container is None else len(lxml.html.tostring(lxml_container))
    start = time.process_time()
    lxml_text = trafilatura_on(lxml_tree, lxml_container, options) if lxml_tree is not None else text
    lxml_seconds = time.process_time() - start
    start = time.process_time()
    precise = trafilatura_precise(html)
    return {
        "container": container is not None,
        "text": text,
        "body_seconds": body_seconds,
        "features": features,
        "text_feature_seconds": text_seconds,
        "node_feature_seconds": node_seconds,
        "page_bytes": len(html),
        "bytes_read": len(container.html if container is not None else html),
        "trafilatura": trafilatura_text,
        "trafilatura_seconds": trafilatura_seconds,
        "precise": precise,
        "precise_seconds": time.process_time() - start,
        "gain": page_score(trafilatura_text, truth) - page_score(text, truth),
        "lxml_container": lxml_container is not None,
        "front_feature_seconds": front_seconds,
        "lxml_bytes_read": lxml_bytes,
        "lxml_trafilatura": lxml_text,
        "lxml_trafilatura_seconds": lxml_seconds,
        "lxml_gain": page_score(lxml_text, truth) - page_score(text, truth),
    }


def estimated(record: dict) -> dict:
    """The record with each step's CPU seconds estimated from the bytes it reads by `_STEP_COSTS`, so that
    thresholds fitted on them do not move with the machine's load."""
    return record | {
        key: per_call + per_mb * record[_READS.get(key, "page_bytes")] / 1e6
        for key, (per_call, per_mb) in _STEP_COSTS.items()
    }


def step_costs(records: list[dict]) -> dict[str, tuple[float, float]]:
    """Each step's CPU seconds per call and per MB read, least squares of the relative error on these records
    (plain least squares follows the largest pages and overestimates the small ones a trigger picks): how
    `_STEP_COSTS` was measured."""
    costs = {}
    for key in _STEP_COSTS:
        mb = np.array([r[_READS.get(key, "page_bytes")] for r in records]) / 1e6
        seconds = np.array([r[key] for r in records])
        fit = np.linalg.lstsq(np.c_[np.ones_like(mb), mb] / seconds[:, None], np.ones_like(mb), rcond=None)[0]
        costs[key] = tuple(fit)
    return costs


def on_lxml_front(record: dict, kind_by_lxml: bool) -> dict:
    """The record with trafilatura read after (d)'s lxml parse and container search: paid on every page when
    its container also decides the kind of page (the "front" feature), else only on the pages picked."""
    front = 0 if kind_by_lxml else record["front_feature_seconds"]
    return record | {
        "container": record["lxml_container"] if kind_by_lxml else record["container"],
        "trafilatura": record["lxml_trafilatura"],
        "trafilatura_seconds": front + record["lxml_trafilatura_seconds"],
        "bytes_read": record["lxml_bytes_read"],
        "gain": record["lxml_gain"],
    }


def fitted(X: np.ndarray, y: np.ndarray, l2: float = _L2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression on standardized features (Newton's method, L2 on all but the intercept)."""
    mean, scale = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    penalty = l2 * np.diag(np.r_[np.ones(Z.shape[1] - 1), 0])
    w = np.zeros(Z.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-Z @ w))
        step = np.linalg.solve((Z * (p * (1 - p))[:, None]).T @ Z + penalty, Z.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-12:
            break
    return mean, scale, w


def logit(model, X: np.ndarray) -> np.ndarray:
    mean, scale, w = model
    return np.hstack([(X - mean) / scale, np.ones((len(X), 1))]) @ w


def columns(container: bool, text_only: bool) -> tuple[str, ...]:
    if text_only:
        return _TEXT_FEATURES
    return _TEXT_FEATURES + _NODE_FEATURES + (_CONTAINER_FEATURES if container else ())


def matrix(records: list[dict], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[r["features"][c] for c in names] for r in records])


def cost_aware(model, records: list[dict], names: tuple[str, ...]) -> np.ndarray:
    return logit(model, matrix(records, names)) - _COST_WEIGHT * np.log([r["bytes_read"] for r in records])


def labels(records: list[dict]) -> np.ndarray:
    return np.array([r["gain"] > 0 for r in records], float)


def out_of_fold(records: list[dict], names: tuple[str, ...]) -> np.ndarray:
    folds = np.arange(len(records)) % _FOLDS
    scores = np.zeros(len(records))
    for fold in range(_FOLDS):
        train = [r for r, f in zip(records, folds) if f != fold]
        model = fitted(matrix(train, names), labels(train))
        scores[folds == fold] = cost_aware(model, [r for r, f in zip(records, folds) if f == fold], names)
    return scores


def outputs(records: list[dict], chosen, features=()) -> tuple[list[str], list[float]]:
    """Texts and CPU seconds per page where `chosen(i, record)` pages get trafilatura's text, at its cost; a
    learned trigger also pays for its `features` ("text", "node") on every page."""
    texts, seconds = [], []
    for i, r in enumerate(records):
        picked = chosen(i, r)
        texts.append(r["trafilatura"] if picked else r["text"])
        paid = sum(r[f"{kind}_feature_seconds"] for kind in features)
        seconds.append(r["body_seconds"] + paid + (r["trafilatura_seconds"] if picked else 0))
    return texts, seconds


def learned_trigger(records: dict[str, list[dict]], pages: dict[str, list], text_only: bool, front=()):
    """The trigger fitted on the tuning half: a model and a threshold for pages with and without a container;
    its out-of-fold F1 and rate ratio on the tuning half (with Readability's pages for the rate); the features
    it pays for; None if no thresholds keep the rate."""
    tuning, readability = records["tuning half"], records["readability"]
    kinds = (True, False)
    names = {kind: columns(kind, text_only) for kind in kinds}
    paid = (("text",) if text_only else ("text", "node")) + front
    train = {kind: [r for r in tuning if r["container"] == kind] for kind in kinds}
    oof = {kind: out_of_fold(train[kind], names[kind]) for kind in kinds}
    models = {kind: fitted(matrix(train[kind], names[kind]), labels(train[kind])) for kind in kinds}
    final = {kind: cost_aware(models[kind], train[kind], names[kind]) for kind in kinds}
    on_readability = [cost_aware(models[r["container"]], [r], names[r["container"]])[0] for r in readability]
    precise = sum(r["precise_seconds"] for r in tuning + readability)
    best = None
    quantiles = np.linspace(0, 1, 41)
    for q_with in quantiles:
        for q_without in quantiles:
            q = {True: q_with, False: q_without}
            # thresholds at quantiles of the tuning scores: the out-of-fold ones for the F1, the final model's
            # for the rate on Readability's pages
            cut = {kind: np.quantile(oof[kind], q[kind]) - 1e-9 for kind in kinds}
            position = {id(r): i for kind in kinds for i, r in enumerate(train[kind])}
            texts, seconds = outputs(
                tuning, lambda _, r: oof[r["container"]][position[id(r)]] >= cut[r["container"]], paid
            )
            final_cut = {kind: np.quantile(final[kind], q[kind]) - 1e-9 for kind in kinds}
            _, seconds_readability = outputs(
                readability, lambda i, r: on_readability[i] >= final_cut[r["container"]], paid
            )
            ratio = precise / (sum(seconds) + sum(seconds_readability))
            f1 = snippet_scores(texts, pages["tuning half"])["f1"]
            if ratio >= _MIN_RATE_RATIO and (best is None or f1 > best[0]):
                best = (f1, ratio, final_cut)
    if best is None:
        return None
    f1, ratio, final_cut = best

    def trigger(_, record: dict) -> bool:
        kind = record["container"]
        return cost_aware(models[kind], [record], names[kind])[0] >= final_cut[kind]

    return trigger, (f1, ratio), paid


def separation(records: list[dict]) -> dict[str, float]:
    """Each feature's AUC (ties halved) between the container pages where trafilatura's text scores higher and
    those where it scores lower, folded so that 0.5 is no signal and 1 a perfect one."""
    pages = [r for r in records if r["container"] and r["gain"] != 0]
    higher = np.array([r["gain"] > 0 for r in pages])
    aucs = {}
    for name in columns(True, False):
        values = np.array([r["features"][name] for r in pages])
        above = (values[higher][:, None] > values[~higher][None, :]).mean()
        ties = (values[higher][:, None] == values[~higher][None, :]).mean()
        auc = above + ties / 2
        aucs[name] = max(auc, 1 - auc)
    return dict(sorted(aucs.items(), key=lambda item: -item[1]))


def main() -> None:
    sets = page_sets()
    options = fast_options()
    records = {
        name: [page_record(html, truth, options) for html, truth in pages] for name, pages in sets.items()
    }

    def row(label, chosen, features=(), viewed=records):
        return table_row(label, {name: outputs(rs, chosen, features) for name, rs in viewed.items()}, sets)

    def precise(rs):
        return [r["precise"] for r in rs], [r["precise_seconds"] for r in rs]

    print(TABLE_HEAD)
    print(row("`extractor: resiliparse_body`", lambda _, r: False))
    print(table_row("`extractor: trafilatura`", {name: precise(rs) for name, rs in records.items()}, sets))
    print(
        row(
            "(b) trafilatura `fast` on the container where >= 3% of resiliparse_body's text is not prose lines",
            lambda _, r: r["container"] and r["features"]["non_prose_share"] >= _NON_PROSE_SHARE,
            ("text",),
        )
    )
    print(row("(b) trafilatura `fast` on every container", lambda _, r: r["container"]))
    for text_only, features in ((False, "text and node features"), (True, "text features only")):
        trigger, (cv_f1, cv_ratio), paid = learned_trigger(records, sets, text_only)
        print(row(f"learned trigger, {features}: container or whole page", trigger, paid))
        print(
            row(
                f"learned trigger, {features}: containers only",
                lambda i, r: r["container"] and trigger(i, r),
                paid,
            )
        )
        print(f"(tuning half out of fold: F1 {cv_f1:.3f} at {cv_ratio:.2f}x trafilatura's rate)")

    def fitted_rows(label, viewed, front=()):
        """The text-only trigger's row with its thresholds fitted on measured CPU seconds and on bytes."""
        for budget, fit_on in (
            ("", viewed),
            (", budget in bytes", {n: list(map(estimated, rs)) for n, rs in viewed.items()}),
        ):
            fit = learned_trigger(fit_on, sets, True, front)
            if fit is None:
                print(f"{label}{budget}: no thresholds keep {_MIN_RATE_RATIO}x trafilatura's rate")
                continue
            trigger, (cv_f1, cv_ratio), paid = fit
            print(row(f"{label}{budget}", trigger, paid, viewed))
            print(f"(tuning half out of fold: F1 {cv_f1:.3f} at {cv_ratio:.2f}x trafilatura's rate{budget})")

    fitted_rows("learned trigger, text features only: container or whole page", records)
    for kind_by_lxml, kind in ((False, "resiliparse_body's container"), (True, "(d)'s container")):
        viewed = {name: [on_lxml_front(r, kind_by_lxml) for r in rs] for name, rs in records.items()}
        front = ("front",) if kind_by_lxml else ()
        fitted_rows(
            f"learned trigger, text features only, on (d)'s front end, kind of page by {kind}", viewed, front
        )
        print(
            row(
                f"bound: (d)'s front end where it scores higher, kind by {kind}",
                lambda _, r: r["gain"] > 0,
                front,
                viewed,
            )
        )
    print(
        row(
            "bound: trafilatura `fast` on the container where it scores higher",
            lambda _, r: r["container"] and r["gain"] > 0,
        )
    )
    print(
        row(
            "bound: trafilatura `fast` on the container or whole page where it scores higher",
            lambda _, r: r["gain"] > 0,
        )
    )
    tuning = records["tuning half"]
    aucs = ", ".join(f"{name} {auc:.2f}" for name, auc in separation(tuning).items())
    print(f"tuning half, container pages where the texts score differently, AUC per feature: {aucs}")
    for kind in ("text", "node", "front"):
        print(
            f"{kind} features: {1000 * np.mean([r[f'{kind}_feature_seconds'] for r in tuning]):.2f} ms per page"
        )
    every_page = [r for rs in records.values() for r in rs]
    costs = step_costs(every_page)
    print(
        "CPU per call / per MB read:",
        ", ".join(f"{k} {1e3 * c:.3f} ms / {m:.4f} s" for k, (c, m) in costs.items()),
    )
    print(f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
