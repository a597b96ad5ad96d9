"""How the CLI shows a bulk greeting build: a ``greetings`` progress bar and a summary."""

from __future__ import annotations

import sys
from typing import Any

import click

from cti.greeting.bulk import BulkReport

MAX_SHOWN_ERRORS = 50


class GreetingsBar:
    """A click progress bar opened at the first report, when the number of customers is known."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="greetings", file=sys.stderr, show_pos=True)
            self._bar.__enter__()
        self._bar.update(done - self._shown)
        self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def echo_report(report: BulkReport) -> None:
    """The errors (at most MAX_SHOWN_ERRORS, on stderr) and one summary line."""
    for error in report.errors[:MAX_SHOWN_ERRORS]:
        click.echo(f"greetings: {error}", err=True)
    click.echo(
        f"{report.recorded} greeting(s) recorded"
        + (f", {report.failed} customer(s) left with the generic greeting" if report.failed else "")
        + (" (stopped after repeated synthesis failures)" if report.aborted else "")
    )
