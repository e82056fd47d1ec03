"""End to end against Dolma 1.2.1's toolkit and datatrove 0.10.1 (issue #17): issue #17's recipe (language ID,
Gopher, C4, FineWeb, MinHash, decontamination, tokenization to OLMo shards) on the same real documents, each
tool's whole process tree timed in the same session.

- ours: `curation run bench/end_to_end.yaml` (a copy pointing at the corpus), one worker pinned with
  `taskset -c 0`, and 2 workers on both cores for the wall-time scaling ratio; then the same recipe on a
  one-document input (the fixed cost of a run).
- Dolma: `dolma tag` (fastText lid.176 English, `gopher_v1`, `c4_v2`), `dedupe` (paragraph Bloom filter),
  `mix` (Gopher's thresholds and C4's document rules as JSONPath excludes, C4's line removal and duplicate
  paragraphs as span removal), `tokens` (dolma2, uint32), each with one process, pinned. Dolma has neither
  MinHash nor decontamination.
- datatrove: LanguageFilter (English), GopherRepetition, GopherQuality, C4Quality, FineWebQuality and a
  JsonlWriter, the 4 MinHash stages, DocumentTokenizer (dolma2), in one process of its venv, pinned.

CPU is user+sys of the whole process tree (`getrusage(RUSAGE_CHILDREN)` around each command: every process
below it is waited for), peak RSS the largest of any one process in it. Every tool uses the same
`filters/resources/lid.176.ftz` (none can download here). The corpus (`corpus` below): the documents of
../shared/corpora/news/*.jsonl.gz, then ../shared/corpora/web's JSONL/JSON.gz files, then every second IMDB
review of ../shared/corpora/reviews, the first --docs of them, in 8 gzipped JSONL files under
`documents/` (Dolma's layout). By hand:

    python bench/bench_end_to_end.py run [--docs 21449] [--tools ours,ours2,dolma,datatrove] [--profile]

Top-level imports are the standard library only: the `datatrove` subcommand runs in the peer's venv.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import benchmarks_md

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MANIFEST = REPO / "bench" / "end_to_end.yaml"
LID_MODEL = REPO / "filters" / "resources" / "lid.176.ftz"
TOKENIZER = REPO / "tokenizers" / "allenai_dolma2.json"
DATATROVE_PYTHON = Path.home() / "peers/datatrove/bin/python"
DOLMA = Path.home() / "peers/dolma/bin/dolma"
HEADING = "## End to end against Dolma and datatrove (issue #17)"
FILES = 8
DEFAULT_DOCS = 21_449
EOS = "<|endoftext|>"
EOS_ID = 100257  # dolma2's <|endoftext|>
PINNED = ["taskset", "-c", "0"]


# ---------------------------------------------------------------- corpus


def corpus_records():
    """News, the web set, every second IMDB review: text, id and URL (when the record has one)."""
    import zstandard

    paths = sorted((SHARED / "corpora" / "news").glob("*.jsonl.gz"))
    web = SHARED / "corpora" / "web"
    paths += sorted([*web.glob("*.jsonl.gz"), *web.glob("*.json.gz")])
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for n, line in enumerate(filter(str.strip, lines)):
                record = json.loads(line)
                metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
                yield f"{path.name}-{n}", record["text"], record.get("url") or metadata.get("url")
    imdb = SHARED / "corpora" / "reviews" / "imdb-aclImdb-50k-labeled.jsonl.zst"
    with imdb.open("rb") as raw:
        lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), encoding="utf-8")
        for n, line in enumerate(lines):
            if n % 2 == 0:
                yield f"imdb-{n}", json.loads(line)["text"], None


def make_corpus(folder: Path, docs: int) -> dict:
    """The first `docs` records as Dolma documents (id, text, source, added, created, metadata.url), in FILES
    files so that 2 workers have files to share."""
    out = folder / "documents"
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for record in corpus_records():
        if len(records) == docs:
            break
        records.append(record)
    if len(records) < docs:
        raise SystemExit(f"the corpus has only {len(records):,} documents; ask for at most that many")
    files = min(FILES, docs)
    chars = 0
    for f in range(files):
        with gzip.open(out / f"part-{f:02d}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as dst:
            for doc_id, text, url in records[f::files]:
                chars += len(text)
                doc = {"id": doc_id, "text": text, "source": "bench", "added": "2026-11-29T00:00:00Z",
                       "created": "2026-11-29T00:00:00Z", "metadata": {"url": url} if url else {}}
                dst.write(json.dumps(doc) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"docs": docs, "chars": chars, "gz_bytes": size}


# ---------------------------------------------------------------- measuring


def time_commands(cmds: list[list[str]]) -> dict:
    """Run the commands in turn (in a fresh process, so that RUSAGE_CHILDREN's peak is theirs alone): wall,
    CPU (user+sys of every process below, all waited for) and the largest peak RSS of any one of them."""
    start = time.perf_counter()
    for cmd in cmds:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def measure(cmds: list[list[str]], cwd: Path) -> dict:
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "time", json.dumps(cmds)], cwd=cwd, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr[-4000:])
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


# ---------------------------------------------------------------- ours


def ours_commands(
    workdir: Path, corpus: Path, workers: int, name: str, mix_tokens: int, fresh: bool = True
) -> list[list[str]]:
    """bench/end_to_end.yaml with its paths made absolute, its input the corpus, its budget `mix_tokens` and its
    output in workdir."""
    import yaml

    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["mix"]["sources"]["web"]["tokens"] = mix_tokens
    here = MANIFEST.parent
    manifest["sources"][0]["paths"] = [str(corpus / "documents" / "*.jsonl.gz")]
    manifest["decontaminate"]["eval_files"] = [str((here / p).resolve()) for p in manifest["decontaminate"]["eval_files"]]
    manifest["output"]["tokenizer"] = str((here / manifest["output"]["tokenizer"]).resolve())
    run_dir = workdir / name
    if fresh:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest["output"]["path"] = str(run_dir / "out")
    path = run_dir / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    cmd = ["env", f"PYTHONPATH={REPO}", sys.executable, "-m", "curation.cli", "run", str(path), "--quiet",
           "--direct_num_workers", str(workers)]
    return [[*PINNED, *cmd] if workers == 1 else cmd]


def available_tokens(workdir: Path, corpus: Path) -> int:
    """The tokens of every document the recipe keeps, from untimed 2-worker runs: a mix must not ask a source
    for more than it has, and the peers tokenize every kept document. A run asking too much stops naming what
    is available, first from an early estimate, then (resuming, so cheaply) from the kept documents."""
    budget = 10**12
    for _ in range(4):
        (cmd,) = ours_commands(workdir, corpus, 2, "calibrate", budget, fresh=False)
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if done.returncode == 0:
            shutil.rmtree(workdir / "calibrate")
            return budget
        found = re.search(r"requested, ([\d,]+) (?:available|at most)", done.stderr)
        if not found:
            raise SystemExit(f"the calibration run did not report the available tokens:\n{done.stderr[-3000:]}")
        budget = int(found.group(1).replace(",", ""))
    raise SystemExit(f"the calibration runs did not settle on a budget (last {budget:,})")


# ---------------------------------------------------------------- Dolma

# Dolma's own lid.176 taggers download the model at run time: the same class, pointed at the local model.
DOLMA_LID_MODULE = f'''
from dolma.core.registry import TaggerRegistry
from dolma.taggers.language import FastTextEnglishLanguageDocumentTagger


@TaggerRegistry.add("ft_lang_id_en_doc_local")
class LocalFastTextEnglishLanguageDocumentTagger(FastTextEnglishLanguageDocumentTagger):
    MODEL_PATH = "{LID_MODEL}"
'''
# Gopher's published thresholds, as Dolma's own web mixes write them, but for the fraction of duplicate lines:
# Dolma's `gopher_v1` counts the empty lines between paragraphs as duplicates (0.5 for every BBC article), so
# that rule would drop nearly all the news.
GOPHER_LIMITS = {
    "word_count": ("<", 50), "median_word_length": ("<", 3), "symbol_to_word_ratio": (">", 0.1),
    "fraction_of_words_with_alpha_character": ("<", 0.8), "required_word_count": ("<", 2),
    "fraction_of_lines_starting_with_bullet_point": (">", 0.9), "fraction_of_lines_ending_with_ellipsis": (">", 0.3),
    "fraction_of_characters_in_duplicate_lines": (">", 0.3),
    "fraction_of_characters_in_most_common_2grams": (">", 0.2), "fraction_of_characters_in_most_common_3grams": (">", 0.18),
    "fraction_of_characters_in_most_common_4grams": (">", 0.16), "fraction_of_characters_in_duplicate_5grams": (">", 0.15),
    "fraction_of_characters_in_duplicate_6grams": (">", 0.14), "fraction_of_characters_in_duplicate_7grams": (">", 0.13),
    "fraction_of_characters_in_duplicate_8grams": (">", 0.12), "fraction_of_characters_in_duplicate_9grams": (">", 0.11),
    "fraction_of_characters_in_duplicate_10grams": (">", 0.10),
}


def dolma_commands(workdir: Path, corpus: Path, docs: int) -> list[list[str]]:
    import yaml

    root = workdir / "dolma"
    shutil.rmtree(root, ignore_errors=True)
    (root / "documents").mkdir(parents=True)
    for f in (corpus / "documents").iterdir():  # Dolma writes attributes beside its documents folder
        os.link(f, root / "documents" / f.name)
    (root / "lid_tagger.py").write_text(DOLMA_LID_MODULE)
    documents = [str(root / "documents" / "*.jsonl.gz")]
    gopher = [f"$.attributes[?(@.bench__gopher_v1__{k} && @.bench__gopher_v1__{k}[0][2] {op} {v})]"
              for k, (op, v) in GOPHER_LIMITS.items()]
    c4_docs = [f"$.attributes[?(@.bench__c4_v2__{k} && @.bench__c4_v2__{k}[0])]"
               for k in ("has_naughty_word", "has_javascript", "has_lorem_ipsum", "has_curly_brace")]
    configs = {
        "tag": {"documents": documents, "taggers": ["ft_lang_id_en_doc_local", "gopher_v1", "c4_v2"],
                "tagger_modules": [str(root / "lid_tagger.py")], "experiment": "bench", "processes": 1},
        "dedupe": {"documents": documents, "processes": 1,
                   "dedupe": {"name": "dedupe_paragraphs", "skip_empty": True,
                              "paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}},
                   "bloom_filter": {"file": str(root / "bloom.bin"), "read_only": False,
                                    "estimated_doc_count": max(10 * docs, 1000), "desired_false_positive_rate": 1e-4}},
        "mix": {"processes": 1, "streams": [{
            "name": "bench", "documents": documents, "attributes": ["bench", "dedupe_paragraphs"],
            "output": {"path": str(root / "mixed"), "max_size_in_bytes": 1_000_000_000},
            "filter": {"exclude": [
                "$.attributes[?(@.bench__ft_lang_id_en_doc_local__en && @.bench__ft_lang_id_en_doc_local__en[0][2] < 0.65)]",
                *gopher, *c4_docs]},
            "span_replacement": [{"span": f"$.attributes.{s}", "min_score": 0.5, "replacement": ""} for s in (
                "bff_duplicate_paragraph_spans", "bench__c4_v2__lines_with_no_ending_punctuation",
                "bench__c4_v2__lines_with_too_few_words")],
        }]},
        "tokens": {"documents": [str(root / "mixed" / "*.json.gz")], "destination": str(root / "tokens"),
                   "tokenizer": {"name_or_path": str(TOKENIZER), "eos_token_id": EOS_ID}, "dtype": "uint32",
                   "processes": 1},
    }
    cmds = []
    for step, config in configs.items():
        path = root / f"{step}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        cmds.append([*PINNED, str(DOLMA), "-c", str(path), step])
    return cmds


def documents_in(folder: Path, pattern: str) -> int:
    kept = 0
    for f in folder.glob(pattern):
        with gzip.open(f, "rt") as lines:
            kept += sum(1 for _ in lines)
    return kept


def kept_documents(workdir: Path, tool: str) -> int:
    """The documents each tool wrote to its token shards."""
    if tool == "dolma":
        return documents_in(workdir / "dolma" / "mixed", "*.json.gz")
    if tool == "datatrove":
        return documents_in(workdir / "datatrove" / "deduped", "*.jsonl.gz")
    (stats,) = (workdir / tool / "out").glob("*/*/stats.json")
    return sum(shard["documents"] for shard in json.loads(stats.read_text())["shards"])


# ---------------------------------------------------------------- datatrove


def run_datatrove(corpus: Path, workdir: Path) -> dict:
    """Runs in datatrove's venv: the FineWeb chain, the 4 MinHash stages, the tokenizer."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from fasttext.FastText import _FastText

    class LocalLanguageFilter(LanguageFilter):
        """The local model instead of a download, loaded in the executor's copy of the block."""

        def filter(self, doc):
            if self.model._model is None:
                self.model._model = _FastText(str(LID_MODEL))
            return super().filter(doc)

    language = LocalLanguageFilter(languages=["en"])
    config = MinhashConfig()
    filtered, deduped = workdir / "filtered", workdir / "deduped"
    stages = [
        [JsonlReader(str(corpus / "documents")), language, GopherRepetitionFilter(), GopherQualityFilter(),
         C4QualityFilter(), FineWebQualityFilter(), JsonlWriter(str(filtered))],
        [JsonlReader(str(filtered)), MinhashDedupSignature(output_folder=str(workdir / "sigs"), config=config)],
        [MinhashDedupBuckets(str(workdir / "sigs"), str(workdir / "buckets"), config=config)],
        [MinhashDedupCluster(str(workdir / "buckets"), str(workdir / "remove"), config=config)],
        [JsonlReader(str(filtered)), MinhashDedupFilter(str(workdir / "remove")), JsonlWriter(str(deduped))],
        [JsonlReader(str(deduped)),
         DocumentTokenizer(str(workdir / "tokens"), tokenizer_name_or_path=str(TOKENIZER), eos_token=EOS)],
    ]
    for i, stage in enumerate(stages):
        tasks = config.num_buckets if i == 2 else 1
        LocalPipelineExecutor(pipeline=stage, tasks=tasks, workers=1, logging_dir=str(workdir / f"logs{i}")).run()
    return {"kept": documents_in(deduped, "*.jsonl.gz")}


def datatrove_commands(workdir: Path, corpus: Path) -> list[list[str]]:
    root = workdir / "datatrove"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return [[*PINNED, str(DATATROVE_PYTHON), __file__, "datatrove", "--corpus", str(corpus), "--workdir", str(root)]]


# ---------------------------------------------------------------- profile

# The function family of a py-spy sample: the first family (in this order) with a frame in one of its files.
FAMILIES = [
    ("decontamination", ("filters/decontaminate/", "stages/decontaminate.py")),
    ("MinHash dedupe", ("filters/dedupe/", "stages/deduplicate.py")),
    ("quality filters", ("filters/",)),
    ("tokenizer", ("stages/tokenize.py", "tokenizers/")),
    ("shards and mix", ("stages/mix.py", "stages/publish.py", "mixes/", "curation/writers.py")),
    ("ledger, audit index, checksums", ("stages/ledger.py", "stages/audit_index.py", "stages/checksums.py")),
    ("our other stage code", ("curation/stages/", "curation/readers/", "curation/chain.py")),
    ("Beam (runner, workers, coders)", ("apache_beam/",)),
]
PHASE_FUNCTIONS = ("prepare", "curate", "decide", "tokenize")  # curation/pipeline.py's phases
OURS = ("curation/", "filters/", "mixes/")


def _frame(frame: str) -> tuple[str, str]:
    """`name (path:line)` as (name, path)."""
    name, _, where = frame.rpartition(" (")
    return name, where.rsplit(":", 1)[0]


def sample_phase(frames: list[tuple[str, str]]) -> str:
    """The innermost of curation/pipeline.py's phase functions; after them (mix, publish, end of run) the
    innermost stage module; before them, start-up."""
    for name, path in reversed(frames):
        if path == "curation/pipeline.py" and name in PHASE_FUNCTIONS:
            return name
    for name, path in reversed(frames):
        if path.startswith("curation/stages/"):
            return path.removeprefix("curation/stages/").removesuffix(".py")
    return "start-up, imports, launcher" if not any(p == "curation/pipeline.py" for _, p in frames) else "run (other)"


def summarise_profile(raw: Path) -> dict:
    """Share of samples by phase, by function family, and the functions of ours holding the most samples
    (innermost frame of ours in each sample)."""
    phases, families, functions, total, idle = Counter(), Counter(), Counter(), 0, 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, frames = int(count), [_frame(f) for f in stack.split(";")[1:]]  # the first names the process
        # py-spy's idle detection misses threads that wait inside `threading` (Beam's data-plane flusher in
        # Event.wait, gRPC's threads blocked in C under Thread.run): they use no CPU, so they are left out.
        if frames and frames[-1][1] == "threading.py":
            idle += n
            continue
        total += n
        phases[sample_phase(frames)] += n
        family = next((name for name, marks in FAMILIES for _, p in frames if any(m in p for m in marks)), None)
        families[family or "other (Python, libraries)"] += n
        own = next((f for f in reversed(frames) if f[1].startswith(OURS)), None)
        functions[f"{own[0]} ({own[1]})" if own else "(no frame of ours)"] += n
    share = lambda c: [(k, round(100 * v / total, 1)) for k, v in c.most_common(12)]  # noqa: E731
    return {"samples": total, "idle": idle, "phases": share(phases), "families": share(families), "functions": share(functions)}


def profile_ours(workdir: Path, corpus: Path, mix_tokens: int) -> dict:
    (cmd,) = ours_commands(workdir, corpus, 1, "ours-profile", mix_tokens)
    raw = workdir / "ours-profile" / "profile.txt"  # run() finds it here
    subprocess.run(["py-spy", "record", "--subprocesses", "--format", "raw", "--rate", "50", "-o", str(raw), "--", *cmd],
                   check=True, capture_output=True, cwd=REPO)
    return summarise_profile(raw)


# ---------------------------------------------------------------- the run and its section

TOOLS = {
    "ours": "`curation run`, 1 worker",
    "ours2": "`curation run`, 2 workers (both cores, not pinned)",
    "dolma": "Dolma 1.2.1: tag, dedupe, mix, tokens",
    "datatrove": "datatrove 0.10.1: FineWeb chain, 4 MinHash stages, tokenizer",
    "fixed": "`curation run`, 1 worker, a one-document input",
}


def run(args: argparse.Namespace) -> None:
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results_path = workdir / "results.json"
    results = json.loads(results_path.read_text()) if args.resume and results_path.exists() else {}
    corpus, tiny = workdir / "corpus", workdir / "corpus-1"
    if "corpus" not in results or results["corpus"]["docs"] != args.docs:
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(tiny, ignore_errors=True)
        results = {"corpus": make_corpus(corpus, args.docs), "started": datetime.datetime.utcnow().isoformat()}
        make_corpus(tiny, 1)
        results["mix_tokens"] = available_tokens(workdir, corpus)
        results["mix_tokens_tiny"] = available_tokens(workdir, tiny)
        results_path.write_text(json.dumps(results, indent=1))
    budget = results["mix_tokens"]
    commands = {
        "ours": lambda: ours_commands(workdir, corpus, 1, "ours", budget),
        "ours2": lambda: ours_commands(workdir, corpus, 2, "ours2", budget),
        "dolma": lambda: dolma_commands(workdir, corpus, args.docs),
        "datatrove": lambda: datatrove_commands(workdir, corpus),
        "fixed": lambda: ours_commands(workdir, tiny, 1, "fixed", results["mix_tokens_tiny"]),
    }
    for tool in args.tools.split(","):
        if tool in results:
            continue
        results[tool] = measure(commands[tool](), REPO)
        results[tool]["kept"] = kept_documents(workdir, tool)
        print(tool, results[tool], file=sys.stderr)
        results_path.write_text(json.dumps(results, indent=1))
    if args.profile:
        raw = workdir / "ours-profile" / "profile.txt"
        kept = args.resume and raw.exists()  # summarised again, so a new summary needs no new profile
        results["profile"] = summarise_profile(raw) if kept else profile_ours(workdir, corpus, budget)
        results_path.write_text(json.dumps(results, indent=1))
    results["ended_load"] = os.getloadavg()[0]
    results_path.write_text(json.dumps(results, indent=1))
    render(results, args)


def render(results: dict, args: argparse.Namespace) -> None:
    corpus = results["corpus"]
    ours = results.get("ours")
    rows = []
    for tool, label in TOOLS.items():
        r = results.get(tool)
        if not r:
            continue
        rate = corpus["docs"] / r["cpu"] if tool != "fixed" else None
        ratio = f"{r['cpu'] / ours['cpu']:.1f}x" if ours and tool in ("dolma", "datatrove") else ""
        rows.append(f"| {label} | {r['cpu']:.1f} | {r['wall']:.1f} | {r['peak_mb']:,.0f} | "
                    f"{f'{rate:,.0f}' if rate else ''} | {ratio} | {r['load']:.1f} | {r.get('kept', 0):,} |")
    verdicts = []
    for tool, goal in (("dolma", 5), ("datatrove", 15)):
        if ours and tool in results:
            ratio = results[tool]["cpu"] / ours["cpu"]
            verdicts.append(f"{ratio:.1f}x {tool} per core, CPU (goal >= {goal}x: {'met' if ratio >= goal else 'not met'})")
    if ours and "ours2" in results:
        scale = ours["wall"] / results["ours2"]["wall"]
        verdicts.append(f"2 workers {scale:.2f}x one worker, wall (goal >= 1.8x: {'met' if scale >= 1.8 else 'not met'})")
    if "fixed" in results:
        fixed = results["fixed"]["cpu"]
        verdicts.append(f"fixed cost {fixed:.1f} CPU s on one document (goal < 3 s: {'met' if fixed < 3 else 'not met'})")
    profile = ""
    if "profile" in results:
        p = results["profile"]
        listed = {k: ", ".join(f"{name} {v}%" for name, v in p[k]) for k in ("phases", "families")}
        functions = ", ".join(f"`{k}` {v}%" for k, v in p["functions"])
        profile = (f"\nWhere `curation run`'s CPU goes (1 worker, in one process; `py-spy record --subprocesses --format raw "
                   f"--rate 50`, {p['samples']:,} samples; {p.get('idle', 0):,} more of threads waiting in `threading` left out). By phase (`curation/pipeline.py`'s phase functions, then the "
                   f"stage module for mix, publish and the end of the run): {listed['phases']}. By function family (a "
                   f"sample counts for the first family, in this order, with a frame in its files): {listed['families']}. "
                   f"The functions of ours holding the most samples (the innermost frame of ours): {functions}.\n")
    body = f"""{HEADING}
{results['started'][:10]}, 2 cores (shared with other engineers' jobs; 1-minute load average in the table, at the
start of each run; {results.get('ended_load', 0):.1f} at the end), one run each, `python bench/bench_end_to_end.py run
--docs {corpus['docs']}`. Corpus: {corpus['docs']:,} real documents, {corpus['chars'] / 1e6:.1f} M characters
({corpus['gz_bytes'] / 1e6:.1f} MB gzipped): every document of `../shared/corpora/news/*.jsonl.gz`, then of
`../shared/corpora/web/*.jsonl.gz` and `*.json.gz`, then every second review of
`../shared/corpora/reviews/imdb-aclImdb-50k-labeled.jsonl.zst`, the first {corpus['docs']:,}, in {FILES} gzipped JSONL files.
Recipe (`bench/end_to_end.yaml`): fastText lid.176 English (>= 0.65; the same local `lid.176.ftz` for all), Gopher
repetition and quality, C4 (line removal and document rules), FineWeb, global MinHash (ours and datatrove;
FineWeb's defaults), decontamination against the 8 benchmarks of `manifests/evals/olmo-core-2024.yaml` (ours only:
Dolma and datatrove have none), tokenization with dolma2 to OLMo shards (Dolma's is uint32 `tokens`; datatrove's
`DocumentTokenizer`). Dolma's dedupe is its paragraph Bloom filter (it has no MinHash); its `mix` applies
Gopher's {len(GOPHER_LIMITS)} thresholds and C4's document rules as JSONPath excludes and removes C4's lines and
duplicate paragraphs as spans. CPU: user+sys of each tool's whole process tree; peak RSS: the largest single
process; every run except the 2-worker one pinned with `taskset -c 0`; Dolma's four commands and datatrove's six
executor stages each run with one process.

| run | CPU s | wall s | peak RSS MB | docs/s per core (CPU) | peer CPU / ours | load | documents in the shards |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{'; '.join(verdicts)}.
{profile}"""
    benchmarks_md.write_section(HEADING, body)
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="build the corpus, run the tools, write results.json and the BENCHMARKS.md section")
    p.add_argument("--docs", type=int, default=DEFAULT_DOCS, help="documents in the corpus (at most about 32,000)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, of {', '.join(TOOLS)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench-end-to-end"))
    p.add_argument("--profile", action="store_true", help="also profile a 1-worker `curation run` with py-spy")
    p.add_argument("--resume", action="store_true", help="keep the runs already in WORKDIR/results.json")
    p = sub.add_parser("time", help="(internal) run JSON-listed commands and print their rusage")
    p.add_argument("commands")
    p = sub.add_parser("datatrove", help="(internal, datatrove's venv) run datatrove's recipe")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "time":
        print(json.dumps(time_commands(json.loads(args.commands))))
    elif args.command == "datatrove":
        print(json.dumps(run_datatrove(args.corpus, args.workdir)))
    else:
        run(args)


if __name__ == "__main__":
    main()
