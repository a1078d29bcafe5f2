"""Runs of the shipped pipelines that the slice, report and attribution tests share.

Each is trained once per test process (``functools.cache``) into a temporary runs folder, with
the shipped pipeline file as it is except for the few overrides named here."""

from __future__ import annotations

import atexit
import functools
import html.parser
import shutil
import tempfile
from pathlib import Path

from data_paths import PIPELINES

import beamline

#: The shipped digits pipeline, shortened (a CNN of 4 epochs, about 0.95 on test; its accuracy
#: gate lowered to match), with attributions for the 3 most confident mistakes in the report.
DIGITS_OVERRIDES = {
    "steps.train.epochs": 4,
    "steps.evaluate.thresholds": {"accuracy": 0.8},
    "steps.evaluate.attributions": 3,
}


@functools.cache
def runs_dir() -> Path:
    """One temporary runs folder for the process, removed when it exits."""
    path = Path(tempfile.mkdtemp(prefix="insight-runs-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def digits_run() -> beamline.Run:
    """A run of pipelines/digits.yaml (4 epochs): ingest, validate, train, evaluate, export."""
    result = beamline.run(PIPELINES / "digits.yaml", DIGITS_OVERRIDES, runs_dir=runs_dir())
    return result.run


#: The shipped spoken digits pipeline, shortened to 8 epochs (about 0.77 on test), gate lowered.
SPOKEN_OVERRIDES = {
    "steps.train.epochs": 8,
    "steps.evaluate.thresholds": {"accuracy": 0.6},
    "steps.evaluate.attributions": 0,
}


@functools.cache
def spoken_digits_run() -> beamline.Run:
    """A run of pipelines/spoken_digits.yaml (8 epochs, export kept)."""
    path = PIPELINES / "spoken_digits.yaml"
    return beamline.run(path, SPOKEN_OVERRIDES, runs_dir=runs_dir()).run


@functools.cache
def sentiment_run() -> beamline.Run:
    """A run of pipelines/sentiment.yaml as shipped (slices by source and length)."""
    return beamline.run(PIPELINES / "sentiment.yaml", runs_dir=runs_dir()).run


class HtmlChecker(html.parser.HTMLParser):
    """Well-formedness of an HTML page: every element closed in order (void elements aside),
    and the ``src`` of every ``img``/``audio``."""

    VOID = {"meta", "img", "br", "hr", "input", "link", "source", "wbr", "area", "col"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.sources: dict[str, list[str]] = {"img": [], "audio": []}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.sources:
            self.sources[tag].append(dict(attrs).get("src") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()


def check_html(text: str) -> HtmlChecker:
    """Parse ``text``; the checker's ``problems`` lists what is not well formed."""
    checker = HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.stack:
        checker.problems.append(f"unclosed: {checker.stack}")
    return checker
