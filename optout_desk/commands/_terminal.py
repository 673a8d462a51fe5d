"""Terminal helpers shared by the sub-commands: consoles, progress bars, confirmation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from optout_desk.core.progress import Progress, ProgressCallback, no_progress
from optout_desk.core.wording import counted

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""
    if not err.is_terminal:
        yield no_progress
        return
    with RichProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None, extra="")

        def report(p: Progress) -> None:
            extra = f"{p.unit}" + (f" · {counted(p.records, 'record')}"
                                   if p.records is not None else "")
            bar.update(task, completed=p.done, total=p.total, extra=extra)

        yield report


def confirm(question: str) -> bool:
    """Ask yes/no on the terminal; the caller has checked that stdin is a terminal."""
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes"}


@contextmanager
def progress_bars(descriptions: dict[str, str]) -> Iterator[dict[str, ProgressCallback]]:
    """One rich progress bar per key (a destination), on stderr when it is a terminal; each
    callback may be called from its own thread (rich's Progress is thread-safe)."""
    if not err.is_terminal:
        yield {key: no_progress for key in descriptions}
        return
    with RichProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as bar:
        callbacks: dict[str, ProgressCallback] = {}
        for key, description in descriptions.items():
            task = bar.add_task(description, total=None, extra="")

            def report(p: Progress, task: object = task) -> None:
                extra = f"{p.unit}" + (f" · {counted(p.records, 'identifier')}"
                                       if p.records is not None else "")
                bar.update(task, completed=p.done, total=p.total, extra=extra)  # type: ignore[arg-type]

            callbacks[key] = report
        yield callbacks
