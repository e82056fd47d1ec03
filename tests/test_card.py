"""The dataset card of a real small release: its numbers match `curation stats`, its HTML is self-contained
and renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import orjson
import pytest
from helpers_provenance import build_release, run_command

from curation.card import write_card
from curation.commands import stats_cmd
from curation.lock import read_lock


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.getbasetemp() / "provenance-release")


def stats_table_rows(text: str) -> dict[str, list[str]]:
    """`curation stats` rows by source: documents, tokens, repetition, requested, achieved."""
    return {
        line.split()[0]: line.split()[1:] for line in text.splitlines()[2:] if not line.startswith("total")
    }


def test_card_tokens_per_source_match_curation_stats(release, capsys):
    assert run_command(stats_cmd, str(release)) == 0
    printed = stats_table_rows(capsys.readouterr().out)
    card = (release / "card.md").read_text()
    for source, cells in printed.items():
        assert f"| {source} | " + " | ".join(cells) + " |" in card
    html = (release / "card.html").read_text()
    for source, cells in printed.items():
        assert f"<tr><td>{source}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" in html


def test_card_funnel_ends_at_kept_documents_and_shows_each_stage(release):
    stats = orjson.loads((release / "stats.json").read_bytes())
    card = (release / "card.md").read_text()
    web = stats["sources"]["web"]
    section = card.split("## Filter funnel: web", 1)[1].split("##", 1)[0]
    assert f"| read | {web['read']:,} |" in section and f"| kept | {web['kept_documents']:,} |" in section
    assert "| after dedupe |" in section and "| after decontaminate |" in section
    assert "| gsm8k | 1 | 1 | 0 |" in card and "| 2 | 1 |" in card


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
    assert "Uncaught" not in dom.stderr and "ERR_FILE_NOT_FOUND" not in dom.stderr
    shot = tmp_path / "card.png"
    render("screenshot-profile", f"--screenshot={shot}", "--window-size=1000,1400", check=True)
    assert shot.stat().st_size > 10_000
