"""Fetching a whole `$top/$skip` paged list, and proving it whole against the platform's count.

Platforms serve fewer rows per page than asked without saying so (a silent cap, with a
`Meta.Limit` that may tell the cap or echo the `$top` asked), return one short page in the
middle, or take in new rows while a client pages. So `fetch_all`:

- steps `$skip` by the rows the platform really served on the first page. When `Meta.Limit`
  is larger than that but no larger than asked (plausible), one probe page tells a short first
  page (the probe is fuller: page by the limit) from a limit that lies (page by the rows);
- fetches the remaining pages concurrently, and asks again for the rest of any page that came
  back short (`$skip` = where it stopped), so a short page loses nothing;
- counts the distinct rows and compares them with `TotalRowCount`. When the pages did not all
  report the same total, or the rows do not match it, it re-asks for the count (a one-row
  request), reads the tail when the list grew (opt-outs arriving during the fetch are appended),
  follows `Links.Next` from the first page once when rows are missing inside the list, and
  raises IncompleteFetchError with both numbers when they still disagree.

Without a TotalRowCount there is nothing to page by or check against: `Links.Next` is
followed, page by page, as the vendor documents.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Protocol

from optout_desk.connectors.errors import IncompleteFetchError, MalformedResponseError
from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.core.records import OptOutRecord

log = logging.getLogger(__name__)

# Re-asking rounds before the fetch is declared incomplete: a tail read per round of arrivals,
# one walk of Links.Next, then a last comparison.
MAX_ROUNDS = 4


@dataclass
class Page:
    offset: int  # the position of its first row: the $skip asked, or Meta.Offset of a link
    items: list[OptOutRecord]
    total: int | None  # Meta.TotalRowCount
    limit: int | None  # Meta.Limit
    next_href: str | None


class PageSource(Protocol):
    """The platform calls `fetch_all` needs; each raises the connector's typed errors and
    Cancelled, and may be called from several threads at once."""

    def page(self, skip: int, top: int) -> Page: ...

    def follow(self, href: str) -> Page: ...

    def count(self) -> int | None:
        """The list's TotalRowCount now (a one-row request), None when it does not say."""
        ...


def fetch_all(source: PageSource, first: Page, asked: int, *, platform: str,
              concurrency: int, progress: ProgressCallback,
              cancel: CancelToken) -> list[OptOutRecord]:
    """Every row of the list `first` (asked with `$top` = `asked`) begins, each once, in the
    platform's order; IncompleteFetchError unless they add up to the platform's count."""
    rows = _Rows(progress)
    served = len(first.items)
    if first.total is None:
        rows.add(first)
        _walk(source, first.next_href, rows, platform, cancel)
        return rows.distinct()
    total = first.total
    rows.planned = -(-total // served) if served else None
    rows.add(first)
    covered, stride = served, served
    if 0 < served < total and first.limit is not None and served < first.limit <= asked:
        # A short first page, or a limit that lies about a silent cap: one probe tells them.
        rows.expect(1)
        probe = source.page(served, first.limit)
        rows.add(probe)
        covered = served + len(probe.items)
        stride = first.limit if len(probe.items) > served else served
        log.info("%s: Meta.Limit %d, rows served %d then %d; paging by %d", platform,
                 first.limit, served, len(probe.items), stride)
    elif served < total and first.limit is not None and first.limit != served:
        log.info("%s: Meta.Limit %d disagrees with the %d rows served; paging by the rows",
                 platform, first.limit, served)
    if stride:
        _by_skip(source, rows, covered, total, stride, concurrency, cancel)
        covered = max(covered, total)
    got, expected = len(rows.distinct()), rows.totals[-1]
    if got == expected and min(rows.totals) == max(rows.totals):
        return rows.distinct()  # every page told the same count, and the rows make it up
    walked = False
    for _ in range(MAX_ROUNDS):
        cancel.raise_if_cancelled()
        expected = _fresh(source.count(), expected)
        got = len(rows.distinct())
        if got == expected:
            return rows.distinct()
        if stride and expected > covered:  # the list grew while paging: read the newcomers
            log.info("%s: %d rows now, %d paged; reading the tail", platform, expected, covered)
            _by_skip(source, rows, covered, expected, stride, concurrency, cancel)
            covered = expected
        elif not walked:  # rows missing inside the list: $skip paging cannot be trusted
            log.info("%s: %d distinct rows of %d; following Links.Next", platform, got,
                     expected)
            walked = True
            _walk(source, first.next_href, rows, platform, cancel)
        else:
            break
    raise IncompleteFetchError(platform, expected, len(rows.distinct()))


def _fresh(count: int | None, known: int) -> int:
    return count if count is not None else known


_CONTACT = itemgetter(6)  # OptOutRecord.contact_id, by position (cheaper than by name)


class _Rows:
    """The pages fetched so far, and their rows distinct by platform row: ContactId and
    DateOptOut where the contact id is real (> 0), else the whole record (platforms that give
    POSTed opt-outs ContactId 0 and one batch timestamp list them as different rows)."""

    def __init__(self, progress: ProgressCallback) -> None:
        self._progress = progress
        self._pages: list[tuple[int, int, list[OptOutRecord]]] = []
        self._distinct: list[OptOutRecord] | None = None
        self.totals: list[int] = []  # TotalRowCount of each answer, in the order they came
        self.planned: int | None = None
        self.records = 0

    def expect(self, pages: int) -> None:
        """`pages` more pages are being asked for (progress shows them in its total)."""
        self.planned = len(self._pages) + pages

    def plan(self, pages: int) -> None:
        """`pages` more pages than expected so far."""
        if self.planned is not None:
            self.planned += pages

    def add(self, page: Page) -> None:
        self._pages.append((page.offset, len(self._pages), page.items))
        self._distinct = None
        if page.total is not None:
            self.totals.append(page.total)
        self.records += len(page.items)
        done = len(self._pages)
        self._progress(Progress(done=done, total=None if self.planned is None
                                else max(self.planned, done), unit="pages",
                                records=self.records))

    def distinct(self) -> list[OptOutRecord]:
        if self._distinct is None:
            ordered = list(chain.from_iterable(
                items for _, _, items in sorted(self._pages, key=itemgetter(0, 1))))
            contacts = list(map(_CONTACT, ordered))
            if None not in contacts and min(contacts, default=1) > 0 and len(
                    set(contacts)) == len(contacts):
                # Every row has its own real ContactId: nothing was fetched twice. Decided by
                # C-level set and min over the ids, not a loop over 100k records.
                self._distinct = ordered
            else:
                unique: dict[object, OptOutRecord] = {}
                for record in ordered:
                    contact = record.contact_id
                    key = ((contact, record.date_opt_out)
                           if type(contact) is int and contact > 0 else record)
                    if key not in unique:
                        unique[key] = record
                self._distinct = list(unique.values())
        return self._distinct


def _by_skip(source: PageSource, rows: _Rows, start: int, end: int, stride: int,
             concurrency: int, cancel: CancelToken) -> None:
    """Rows [start, end) by `$skip`, `stride` per page, on a few threads; a page that comes
    back short is asked again for the rest of its window. Every page asks `$top` = `stride`,
    also the last: rows that arrive meanwhile come with it."""
    # (skip, top, rows expected)
    windows = [(skip, stride, min(stride, end - skip)) for skip in range(start, end, stride)]
    if not windows:
        return
    rows.expect(len(windows))
    # Twice the requests allowed in flight: the session's gate bounds the requests, the extra
    # threads parse answers meanwhile.
    pool = ThreadPoolExecutor(max(1, min(2 * concurrency, len(windows))),
                              thread_name_prefix="page")
    try:
        pending: dict[Future[Page], tuple[int, int, int]] = {
            pool.submit(source.page, skip, top): (skip, top, want)
            for skip, top, want in windows}
        while pending:
            finished, _ = wait(list(pending), timeout=0.1, return_when=FIRST_COMPLETED)
            for future in finished:
                skip, _, want = pending.pop(future)
                page = future.result()  # a failed page fails the fetch
                got = len(page.items)
                short = 0 < got < want
                if short:
                    rows.plan(1)
                rows.add(page)
                if short:  # the rest of the window, from where this page stopped
                    rest = (skip + got, want - got, want - got)
                    pending[pool.submit(source.page, rest[0], rest[1])] = rest
            if cancel.cancelled:
                raise Cancelled()
    finally:
        # Queued pages are dropped; pages in flight are waited for (they notice the cancel
        # within a tenth of a second, see connectors/deadline.py), so no request outlives
        # the fetch.
        pool.shutdown(wait=True, cancel_futures=True)


def _walk(source: PageSource, href: str | None, rows: _Rows, platform: str,
          cancel: CancelToken) -> None:
    """Follow Links.Next from `href` until the list ends."""
    seen: set[str] = set()
    while href:
        cancel.raise_if_cancelled()
        if href in seen:  # a platform bug must not loop forever
            raise MalformedResponseError(
                f"{platform}'s Links.Next pointed back at a page already fetched.")
        seen.add(href)
        page = source.follow(href)
        if not page.items:
            break
        rows.add(page)
        href = page.next_href
