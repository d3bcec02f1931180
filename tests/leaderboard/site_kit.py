"""A small results folder for the site tests, and checks that read a built site without a browser.

The folder (under a protocol of its own that publishes reference numbers) holds: ``l1norm`` and
``taylor`` within seed noise of each other (rank "1-2" each), ``random`` clearly below (rank 3),
a method with a hostile name, a row with 1 of 3 seeds (listed apart), an open-division row, runs
with measured latency, and one invalid file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pruning_suite.protocol.catalogue import shipped_protocol
from pruning_suite.protocol.sections import Reference
from tests.conftest_submissions import make_submission, write_submission

HOSTILE = "<script>alert(1)</script>"
TOP1 = {  # whole numbers of digits' 360 test images (2.5 pp = 9 images)
    "l1norm": (87.5, 90.0, 92.5),
    "taylor": (85.0, 87.5, 90.0),
    "random": (75.0, 77.5, 80.0),
    HOSTILE: (65.0, 67.5, 70.0),
}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def protocol():
    """digits-convnet@1 under its own id, with a published reference for the target and the
    dense model."""
    refs = (
        Reference(
            source="A. Author 2024, Table 1",
            method="l1norm",
            target="uniform-50",
            top1=93.0,
            std=0.1,
            sparsity=0.4,
            speedup=2.5,
            statistic="best-epoch test accuracy, population std",
        ),
        Reference(source="A. Author 2024, Table 1", method="dense", top1=94.0),
    )
    base = shipped_protocol("digits-convnet", 1)
    return base.model_copy(update={"id": "my-digits", "references": refs})


def _latency(speedup: float) -> list[dict]:
    return [
        {
            "device": "cpu",
            "device_name": "Test CPU",
            "num_threads": 2,
            "batch_size": batch,
            "warmup": 3,
            "repeats": 7,
            "dense_ms": 4.0 * batch / 64,
            "pruned_ms": 4.0 * batch / 64 / speedup,
            "speedup": speedup,
            "dense_throughput": 64 / 0.004,
            "pruned_throughput": 64 * speedup / 0.004,
        }
        for batch in (1, 64)
    ]


def write_results(folder: Path) -> Path:
    """Write the sample results under ``folder``; returns it."""
    under = protocol()
    for method, top1s in TOP1.items():
        for seed, top1 in enumerate(top1s):
            data = make_submission(method=method, seed=seed, top1=top1, under=under)
            if method in ("l1norm", "random"):
                data["latency"] = _latency(1.5 if method == "l1norm" else 1.25)
            write_submission(folder / method, data)
    write_submission(
        folder / "slimming", make_submission(method="slimming", top1=95.0, under=under)
    )
    for seed in range(3):
        data = make_submission(
            seed=seed, top1=87.5, under=under, retraining_override={"lr_schedule": "0:0.001"}
        )
        write_submission(folder / "open", data)
    bad = make_submission(method="broken", under=under)
    bad["pruning"]["flops_pruned"] = 1
    write_submission(folder / "broken", bad)
    return folder


class PageChecker(HTMLParser):
    """Collects a page's tag errors, ids, links and inline SVG elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._attrs(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self._attrs(attrs)

    def _attrs(self, attrs: list) -> None:
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name in ("href", "src"):
                self.links.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def check_page(path: Path) -> PageChecker:
    """Parse ``path``; ``errors`` lists unbalanced tags, duplicate ids, malformed SVG."""
    text = path.read_text(encoding="utf-8")
    checker = PageChecker()
    checker.feed(text)
    checker.close()
    if checker.stack:
        checker.errors.append(f"unclosed tags at the end: {checker.stack}")
    if not checker.doctype:
        checker.errors.append("no <!DOCTYPE html>")
    duplicates = sorted({i for i in checker.ids if checker.ids.count(i) > 1})
    if duplicates:
        checker.errors.append(f"duplicate ids: {duplicates}")
    for svg in re.findall(r"<svg .*?</svg>", text, flags=re.S):
        try:
            ET.fromstring(svg)
        except ET.ParseError as err:
            checker.errors.append(f"malformed SVG: {err}")
    return checker


def broken_links(site: Path) -> list[str]:
    """Every link of every page that names a missing file or a missing #id."""
    site = site.resolve()
    pages = {page.resolve(): check_page(page) for page in site.rglob("*.html")}
    broken = []
    for page, checker in pages.items():
        for link in checker.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                broken.append(f"{page.relative_to(site)}: external link {link}")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file() or site not in target.parents:
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and parts.fragment not in pages[target].ids:
                broken.append(f"{page.relative_to(site)}: {link} (no such id)")
    return broken
