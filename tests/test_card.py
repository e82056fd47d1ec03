"""The dataset card of a real small release: its numbers match `curation stats`; it shows each source's
origin, licence and languages, length histograms, dedup clusters in numeric order, every benchmark checked
(clean ones too), paragraph cuts, the upsampled source flagged, the PII masked, the lock digest and the
regenerate command under a Hugging Face metadata header; its HTML is self-contained and renders in headless
Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace

import orjson
import pytest
import yaml
from conftest import REPO, small_manifest, write_manifest
from helpers_provenance import (
    PII_ID,
    QUALITY_FILTER,
    REPEATED_COPIES,
    build_release,
    first_web_page,
    run_command,
)

from curation.card import lock_digest, repetition_flag, write_card
from curation.commands import stats_cmd
from curation.errors import ManifestError
from curation.lock import read_lock
from curation.stages.curate import pool_digest
from curation.writers import read_documents
from filters.registry import FILTERS
from mixes.manifest import SourceConfig, load_manifest

# A paragraph of the first web page (the one with an exact duplicate) that a planted page repeats.
REPEATED_PARAGRAPH = next(p for p in first_web_page().split("\n") if len(p) > 200)
# Web's kept documents hold about 7,700 tokens: the mix repeats them about 2.6 times.
WEB_TOKENS = 20_000


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    """The provenance release with paragraph dedupe over a page repeating another's paragraph, and a mix that
    upsamples web and subsamples papers."""
    return build_release(
        tmp_path_factory.getbasetemp() / "card-release",
        extra_pages=({"id": "page-quoting-a-paragraph", "text": f"As a neighbour wrote last spring:\n{REPEATED_PARAGRAPH}"},),
        dedupe={"exact": {"scope": "global"}, "paragraph": {"scope": "per_source"}},
        # A mix lists every source: the notes source too, present when its filter is.
        mix={"sources": {"web": {"tokens": WEB_TOKENS, "max_repetition": 3}, "papers": {"tokens": 50_000}}
             | ({"notes": {"tokens": 200}} if QUALITY_FILTER in FILTERS else {})},
    )


def stats_table_rows(text: str) -> dict[str, list[str]]:
    """`curation stats` rows by source: kept documents, mixed tokens, repetition, requested, achieved; and
    the total's kept documents and mixed tokens."""
    rows = {}
    for line in text.splitlines()[2:]:
        name, *cells = line.split()
        # The total's two numbers are followed by words on the mix.
        rows[name] = cells[:2] if name == "total" else cells
    return rows


def test_card_tokens_per_source_match_curation_stats(release, capsys):
    assert run_command(stats_cmd, str(release)) == 0
    printed = stats_table_rows(capsys.readouterr().out)
    card = (release / "card.md").read_text()
    assert "total" in printed and len(printed) > 2
    for source, cells in printed.items():
        assert f"| {source} | " + " | ".join(cells) + " |" in card
    html = (release / "card.html").read_text()
    for source, cells in printed.items():
        assert f"<tr><td>{source}</td>" + "".join(f"<td>{c}</td>" for c in cells) in html


def test_card_funnel_ends_at_kept_documents_and_shows_each_stage(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    card = (release / "card.md").read_text()
    web = stats["sources"]["web"]
    section = card.split("## Filter funnel: web", 1)[1].split("##", 1)[0]
    assert f"| read | {web['read']:,} |" in section and f"| kept | {web['kept_documents']:,} |" in section
    assert "| after dedupe |" in section and "| after decontaminate |" in section
    assert "| gsm8k | 1 | 1 | 0 |" in card and "| 2 | 1 |" in card


def section(card: str, title: str) -> str:
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_card_names_origin_licence_and_languages_of_each_source(release):
    sources = section((release / "card.md").read_text(), "Sources")
    assert "| web | C4 (allenai/OLMo test fixtures) | odc-by | en |" in sources
    assert "| papers | arXiv abstracts (arXiv API metadata) | cc0-1.0 | en |" in sources


def test_card_lists_every_benchmark_checked_including_clean_ones(release):
    checked = section((release / "card.md").read_text(), "Decontamination (1 matches)")
    assert "| gsm8k | 1 | 1 | 0 |" in checked and "| humaneval | 0 | 0 | 0 |" in checked


def test_card_orders_dedup_cluster_sizes_as_numbers(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    # stats.json sorts keys as text, which puts 10 before 2.
    assert list(stats["dedupe_cluster_sizes"]) == ["10", "2"]
    clusters = section((release / "card.md").read_text(), "Dedup cluster sizes")
    assert clusters.index("| 2 | 1 |") < clusters.index(f"| {REPEATED_COPIES + 1} | 1 |")


def test_card_histograms_count_every_kept_document_once(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    card = (release / "card.md").read_text()
    for kind in ("characters", "tokens"):
        table = section(card, f"Document length in {kind}")
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
        total = sum(int(row[-1].rstrip(" |").replace(",", "")) for row in rows)
        assert total == stats["totals"]["kept_documents"]
        bins = [int(row[0].lstrip("| ").split("-")[0].replace(",", "")) for row in rows]
        assert bins == sorted(bins) and len(bins) > 2


def test_card_counts_the_pii_masked_in_kept_documents(release):
    """Counted again here from the published documents, where the planted page shows its placeholders."""
    docs = [d for part in sorted(release.glob("documents/web/part-*")) for d in read_documents(str(part))]
    planted = next(d for d in docs if d["id"] == PII_ID)
    assert "|||EMAIL_ADDRESS|||" in planted["text"] and "|||PHONE_NUMBER|||" in planted["text"]
    pii = section((release / "card.md").read_text(), "PII handling")
    for kind in ("email_addresses", "ip_addresses", "phone_numbers"):
        masked = sum(int(d["attributes"][f"pii_mask_v1/{kind}"]) for d in docs)
        assert f"| web | pii_mask_v1 | {kind} | {masked:,} |" in pii
    touched = sum(any(d["attributes"][f"pii_mask_v1/{k}"] for k in ("email_addresses", "ip_addresses", "phone_numbers")) for d in docs)
    assert touched >= 1 and f"documents with a masked span | {touched:,} |" in pii
    (unmasked,) = [line for line in pii.splitlines() if line.startswith("Not masked (no PII filter in their chain): ")]
    assert "papers" in unmasked and "web" not in unmasked


def test_card_gives_lock_digest_regenerate_command_and_hf_header(release):
    card = (release / "card.md").read_text()
    lock = read_lock(str(release / "lock.json"))
    provenance = section(card, "Provenance and regeneration")
    assert f"| lock digest | {lock_digest(lock)} " in provenance and lock["manifest_sha256"] in provenance
    assert "curation regenerate small/1.0.0/lock.json --verify" in provenance
    header = yaml.safe_load(card.split("---\n", 2)[1])
    assert header["license"] == ["cc0-1.0", "odc-by"] and header["language"] == ["en"]
    stats = orjson.loads((release / "stats.json").read_bytes())
    assert 1_000 <= stats["totals"]["kept_documents"] < 10_000
    assert header["task_categories"] == ["text-generation"] and header["size_categories"] == ["1K<n<10K"]
    assert [c["config_name"] for c in header["configs"]] == list(stats["sources"])


def test_card_shows_the_paragraph_cut_the_published_documents_show(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    assert stats["sources"]["web"]["span_edits"] == {"dedupe/duplicate_paragraph": 1}
    docs = [d for part in sorted(release.glob("documents/web/part-*")) for d in read_documents(str(part))]
    assert sum(d["text"].count(REPEATED_PARAGRAPH) for d in docs) == 1
    cuts = section((release / "card.md").read_text(), "Paragraph and span cuts")
    assert "| web | dedupe/duplicate_paragraph | 1 |" in cuts and "| papers |" not in cuts


def test_card_flags_the_upsampled_and_the_subsampled_source(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    web, papers = stats["sources"]["web"], stats["sources"]["papers"]
    assert web["achieved_tokens"] > 2 * web["kept_tokens"] and papers["achieved_tokens"] < papers["kept_tokens"] / 2
    card = (release / "card.md").read_text()
    tokens = section(card, "Tokens per source")
    assert re.search(r"^\| web \| .* \| UPSAMPLED 2\.\d\dx \(max_repetition 3\) \|$", tokens, re.MULTILINE)
    assert re.search(r"^\| papers \| .* \| subsampled to \d\d\.\d% \|$", tokens, re.MULTILINE)
    assert f"The mix repeats documents of web ({web['repetition']:.2f}x)" in section(card, "Uses and limitations")


def test_card_flags_upsampled_sources_only():
    assert repetition_flag({"repetition": 2.810168919868462, "max_repetition": 3.0}) == "UPSAMPLED 2.81x (max_repetition 3)"
    assert repetition_flag({"repetition": 1.0}) == ""
    assert repetition_flag({"repetition": 0.11359490191178308}) == "subsampled to 11.4%"


def test_card_is_regenerated_byte_identical_from_stats_and_lock(release, tmp_path):
    before = (release / "card.html").read_bytes(), (release / "card.md").read_bytes()
    write_card(str(release), read_lock(str(release / "lock.json")))
    assert ((release / "card.html").read_bytes(), (release / "card.md").read_bytes()) == before


def test_card_html_has_no_external_assets(release):
    html = (release / "card.html").read_text()
    assert html.count("<svg") >= 3
    assert (
        not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
        and "<script" not in html
        and "<link" not in html
    )


def test_card_html_renders_in_headless_chromium(release, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is absent (apt-get install -y chromium; .ci/run does so when run as root)")
    card = (release / "card.html").as_uri()

    def render(profile: str, *args: str, check: bool) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                chromium,
                "--headless",
                # Chromium's sandbox refuses to start as root, which is how CI runs.
                "--no-sandbox",
                "--disable-gpu",
                # Offline, Chromium's background connections fail at every start: these stop it making them.
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                # A fresh profile, so nothing a browser session left behind changes what renders.
                f"--user-data-dir={tmp_path / profile}",
                "--enable-logging=stderr",
                *args,
                card,
            ],
            check=check,
            capture_output=True,
            text=True,
            timeout=300,
        )

    dom = render("dom-profile", "--dump-dom", check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h2>Tokens per source</h2>" in dom.stdout and "<svg" in dom.stdout
    for title in ("Sources", "How to load", "Document length in tokens", "PII handling", "Uses and limitations",
                  "Provenance and regeneration", "Hugging Face metadata"):
        assert f"<h2>{title}</h2>" in dom.stdout, title
    assert "<tr><td>humaneval</td><td>0</td><td>0</td><td>0</td></tr>" in dom.stdout
    assert re.search(r"<tr><td>2</td><td>1</td></tr>\s*<tr><td>10</td><td>1</td></tr>", dom.stdout)
    assert '<pre id="hf-metadata"><code>pretty_name: small 1.0.0' in dom.stdout
    assert "<h2>Paragraph and span cuts</h2>" in dom.stdout
    assert "<tr><td>web</td><td>dedupe/duplicate_paragraph</td><td>1</td></tr>" in dom.stdout
    assert re.search(r"<tr><td>web</td>(<td>[^<]*</td>){5}<td>UPSAMPLED 2\.\d\dx \(max_repetition 3\)</td></tr>", dom.stdout)
    assert "Uncaught" not in dom.stderr and "ERR_FILE_NOT_FOUND" not in dom.stderr
    shot = tmp_path / "card.png"
    render("screenshot-profile", f"--screenshot={shot}", "--window-size=1000,1400", check=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("license", "Apache 2.0", "license 'Apache 2.0' is not a licence id such as apache-2.0, odc-by or other"),
        ("languages", ["English"], "language 'English' is not an ISO 639 code such as en, or code"),
    ],
)
def test_manifest_refuses_card_fields_the_hf_header_cannot_carry(tmp_path, field, value, problem):
    body = small_manifest(tmp_path)
    body["sources"][0][field] = value
    path = write_manifest(tmp_path, body)
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert str(raised.value) == f"{path}: sources[0]: {problem}"


def test_card_fields_leave_pools_to_be_reused():
    """Describing a source (stage two may word it otherwise) does not rescore its inputs; reading it otherwise does."""
    papers = REPO / "data" / "demo" / "papers" / "arxiv-abstracts-head1000.jsonl.gz"
    source = SourceConfig(name="papers", paths=[str(papers)])
    described = replace(source, origin="arXiv abstracts", license=["cc0-1.0"], languages=["en"])
    name = "data/demo/papers/arxiv-abstracts-head1000.jsonl.gz"
    assert pool_digest(described, str(papers), name) == pool_digest(source, str(papers), name)
    assert pool_digest(replace(source, text_field="abstract"), str(papers), name) != pool_digest(source, str(papers), name)
