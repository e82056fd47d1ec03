"""Test-only extractors, registered by name in tests: the default extractor, except on the one page of
data/demo/warc/sample-0000.warc.gz that shows "A raccoon wearing a top hat" (soldaini.net), where each
fails in its own way. They run in the isolated child process, which imports them from here."""

import os
import signal
import time

from curation.readers.extract import Extractor, resiliparse_article

POISONED_PAGE_MARK = "A raccoon wearing a top hat"
POISONED_PAGE_URL = "https://soldaini.net/"


def _unless_poisoned(fail):
    def extract(html: str) -> str:
        if POISONED_PAGE_MARK in html:
            fail()
        return resiliparse_article(html)

    return extract


def _spin() -> None:
    while True:
        pass


def _block() -> None:
    time.sleep(3600)


def _segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _raise() -> None:
    raise ValueError("this page is beyond me")


spins_on_poisoned_page = _unless_poisoned(_spin)
blocks_on_poisoned_page = _unless_poisoned(_block)
segfaults_on_poisoned_page = _unless_poisoned(_segfault)
raises_on_poisoned_page = _unless_poisoned(_raise)

TEST_EXTRACTORS = {
    name: Extractor(f"helpers_extract:{name}", ("resiliparse",))
    for name in (
        "spins_on_poisoned_page",
        "blocks_on_poisoned_page",
        "segfaults_on_poisoned_page",
        "raises_on_poisoned_page",
    )
}
