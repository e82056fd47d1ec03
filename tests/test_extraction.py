"""HTML extraction: the extractors by name, the default's cut to the article, and the isolated child process
that turns a page which hangs, crashes or breaks an extractor into that page's quarantine row."""

import gzip

import pytest
from conftest import DEMO_DATA
from helpers_extract import POISONED_PAGE_MARK, POISONED_PAGE_URL, TEST_EXTRACTORS
from helpers_io import REPO_DATA, source, split
from resiliparse.parse.html import HTMLTree

from curation.errors import InputError
from curation.readers import extract, extract_isolated, read_source_file
from curation.readers.extract import article_span, body_article, extractor, resiliparse_main_content
from curation.readers.extract_isolated import ExtractFailure, IsolatedExtractor

SAMPLE_WARC = DEMO_DATA / "warc" / "sample-0000.warc.gz"
WHIRLWIND_WARC = REPO_DATA / "whirlwind.warc.gz"
# The offset of the response record of POISONED_PAGE_URL in SAMPLE_WARC.
POISONED_PAGE_OFFSET = 119304


@pytest.fixture(scope="module")
def sample_documents():
    docs, quarantined = split(read_source_file(source(), str(SAMPLE_WARC)))
    assert len(docs) == 22 and quarantined == []
    return docs


@pytest.fixture(scope="module")
def sample_pages() -> list[str]:
    """The HTML of each page in SAMPLE_WARC, decoded as the reader decodes it."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    pages = []
    with open(SAMPLE_WARC, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True):
            body = record.reader.read()
            pages.append(bytes_to_str(body, record.http_charset or detect_encoding(body)))
    return pages


@pytest.fixture
def test_extractors(monkeypatch):
    for name, spec in TEST_EXTRACTORS.items():
        monkeypatch.setitem(extract.EXTRACTORS, name, spec)


def read_with(name: str, **overrides):
    return split(read_source_file(source(extractor=name, **overrides), str(SAMPLE_WARC)))


def assert_only_the_poisoned_page_is_lost(docs, quarantined, sample_documents, reason: str) -> str:
    assert [(q.reason, q.offset) for q in quarantined] == [(reason, POISONED_PAGE_OFFSET)]
    expected = [d for d in sample_documents if d.url != POISONED_PAGE_URL]
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in expected]
    return quarantined[0].excerpt


def test_a_page_that_hangs_the_extractor_is_quarantined_as_extract_timeout(
    test_extractors, monkeypatch, sample_documents
):
    # The least CPU time a page may be given, so the spinning page ends in one or two CPU seconds.
    monkeypatch.setattr(extract_isolated, "TIMEOUT_CPU_SECONDS", 1)
    docs, quarantined = read_with("spins_on_poisoned_page")
    detail = assert_only_the_poisoned_page_is_lost(docs, quarantined, sample_documents, "extract_timeout")
    assert "1 s of CPU time" in detail or "wall time" in detail


def test_a_child_that_blocks_without_computing_is_replaced_after_the_wall_clock_backstop(
    test_extractors, monkeypatch, sample_pages
):
    # A sleeping extractor uses no CPU time, so only the wall clock ends it (shortened here to 1 s).
    (poisoned,) = [html for html in sample_pages if POISONED_PAGE_MARK in html]
    with IsolatedExtractor("blocks_on_poisoned_page", timeout_cpu_seconds=1) as isolated:
        with monkeypatch.context() as shortened:
            shortened.setattr(extract_isolated, "_MIN_WALL_SECONDS", 1)
            shortened.setattr(extract_isolated, "_WALL_PER_CPU_SECOND", 1)
            assert isolated.extract(poisoned) == ExtractFailure(
                "extract_timeout", "no answer in 1 s of wall time"
            )
        assert isolated.extract(sample_pages[0]) == extractor("resiliparse_article")(sample_pages[0])


def test_a_page_that_kills_the_extractor_is_quarantined_as_extract_crash(test_extractors, sample_documents):
    docs, quarantined = read_with("segfaults_on_poisoned_page")
    detail = assert_only_the_poisoned_page_is_lost(docs, quarantined, sample_documents, "extract_crash")
    assert "SIGSEGV" in detail


def test_an_extractor_error_is_the_page_quarantine_with_its_message(test_extractors, sample_documents):
    docs, quarantined = read_with("raises_on_poisoned_page")
    detail = assert_only_the_poisoned_page_is_lost(docs, quarantined, sample_documents, "extract_error")
    assert detail == "ValueError: this page is beyond me"


def test_on_error_fail_stops_at_the_page_the_extractor_died_on(test_extractors):
    with pytest.raises(
        InputError, match=rf"sample-0000\.warc\.gz: .*{POISONED_PAGE_OFFSET}.*: extract_crash"
    ):
        read_with("segfaults_on_poisoned_page", on_error="fail")


def test_the_child_process_gives_the_text_extraction_gives_in_process(sample_pages):
    for name in ("resiliparse_article", "resiliparse", "resiliparse_body"):
        with IsolatedExtractor(name) as isolated:
            assert [isolated.extract(html) for html in sample_pages] == list(
                map(extractor(name), sample_pages)
            )


def test_trafilatura_text_does_not_depend_on_the_pages_read_before():
    # With trafilatura's `deduplicate` (datatrove's default), segments seen on earlier pages are dropped: the
    # fourth reading of this page in one process kept 951 of its 2,009 characters.
    pytest.importorskip("trafilatura")
    readings = [read_source_file(source(extractor="trafilatura"), str(WHIRLWIND_WARC)) for _ in range(4)]
    texts = {doc.text for reading in readings for doc in reading}
    assert len(texts) == 1 and "Escopete" in texts.pop()


def test_a_missing_extractor_library_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(extract.EXTRACTORS, "absent", extract.Extractor("nowhere:extract", ("no-such-dist",)))
    with pytest.raises(
        extract.CurationError, match="extractor 'absent' needs the Python package 'no-such-dist'"
    ):
        IsolatedExtractor("absent")


def test_default_cuts_the_lines_around_the_article(sample_pages):
    # maria-antoniak.github.io/2020/03/25/pip.html: resiliparse's main content keeps the post's date below
    # its last paragraph; the code lines inside the post stay.
    (page,) = [html for html in sample_pages if "<title>Make Your Project Pippable" in html]
    main_content, article = resiliparse_main_content(page), extractor("resiliparse_article")(page)
    assert article.startswith("Make Your Project Pippable\n\nThis is a no nonsense guide")
    assert article.endswith("These resources have much more detailed information.")
    assert "    python3 setup.py sdist bdist_wheel\n" in article
    assert main_content.startswith(article) and main_content[len(article) :].strip() == "Marche 25, 2020"


def test_body_extractor_reads_the_article_container_under_the_page_title(sample_pages):
    # www.cs.washington.edu/people/faculty/weld: the bio is the page's <div class="content">, where trafilatura
    # looks for a page's main content; the page's <h1> heads it instead of the contact and research-area lines
    # above it that resiliparse's main content keeps.
    (page,) = [html for html in sample_pages if "<title>Dan Weld |" in html]
    article, body = extractor("resiliparse_article")(page), extractor("resiliparse_body")(page)
    bio = "Daniel S. Weld is Professor Emeritus at the Paul G. Allen School"
    assert body.startswith(f"Dan Weld\n\n{bio}")
    assert article.startswith(
        "Artificial intelligence, human computer interaction, natural language processing\n\n"
    )
    assert article.endswith(body[len("Dan Weld") :])
    text, container = body_article(HTMLTree.parse(page))
    assert text == body and container.tag == "div" and container.getattr("class") == "content"


def test_body_extractor_falls_back_to_the_whole_page_without_a_body_container(sample_pages):
    # maria-antoniak.github.io/2020/03/25/pip.html has no container named as an article's body.
    (page,) = [html for html in sample_pages if "<title>Make Your Project Pippable" in html]
    assert extractor("resiliparse_body")(page) == extractor("resiliparse_article")(page)
    assert body_article(HTMLTree.parse(page))[1] is None


def test_text_without_prose_lines_is_kept_whole():
    menu = "Home\nAbout\nContact\n\nImpressum"
    assert article_span(menu) == menu


def test_wet_text_does_not_go_through_an_extractor():
    # A WET record is already text: no extractor runs, so even a broken one cannot touch it.
    path = REPO_DATA / "whirlwind.warc.wet.gz"
    (doc,) = read_source_file(source(extractor="trafilatura"), str(path))
    assert doc.text in gzip.decompress(path.read_bytes()).decode()
