"""The Opt-outs page (issue 13): it refreshes when another page changes the cache, the Survey
field lists surveys and clearing it shows the whole list, the chart's hover and click, phone
search in any format, local times and readable sources."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt

from optout_desk.core.records import OptOutRecord
from optout_desk.sandbox.data import survey_ids
from optout_desk.store import cache, connections
from optout_desk.store.db import connect

pytestmark = pytest.mark.usefixtures("sandbox_connection")


def fetch_and_wait(page: Any, qtbot: Any) -> None:
    qtbot.mouseClick(page.fetch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.fetching, timeout=30_000)
    qtbot.waitUntil(lambda: page._load_task is None, timeout=10_000)


def test_the_page_reloads_when_another_page_changes_the_cache(optouts_page: Any, qtbot: Any,
                                                              main_window: Any) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    before = page.model.total_rows
    db = connect()
    try:  # what a submission's verify does: the cached list gains the new opt-outs
        profile = connections.get(db, "sbx")
        assert profile.id is not None
        cache.apply_fetch(db, profile.id, "", [
            OptOutRecord("2026-11-30T10:00:00.0000000Z", email="new@example.com", contact_id=1),
        ], replace=False, synced_at="2026-11-30T10:00:01Z")
    finally:
        db.close()
    assert page.model.total_rows == before  # nobody said anything yet
    main_window.changes.cacheChanged.emit("sbx")
    qtbot.waitUntil(lambda: page.model.total_rows == before + 1, timeout=10_000)
    main_window.changes.cacheChanged.emit("another-connection")  # not this list: no reload
    assert page._load_task is None


def test_survey_field_lists_surveys_and_clearing_it_shows_the_whole_list(
    optouts_page: Any, qtbot: Any
) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    whole = page.model.total_rows
    survey = str(survey_ids(5)[0])
    page.set_survey(survey)
    assert page.scope() == survey
    fetch_and_wait(page, qtbot)
    assert 0 < page.model.total_rows < whole
    assert f"survey {survey}" in page.table.count_label.text()
    page.survey.lineEdit().clear()  # the clear button does this
    qtbot.waitUntil(lambda: page._load_task is None and page.model.total_rows == whole,
                    timeout=10_000)
    assert page.scope() == ""
    assert page.survey_choices()[0] == "All surveys"
    assert any(choice.startswith(f"Survey {survey}") for choice in page.survey_choices())
    index = next(i for i, text in enumerate(page.survey_choices())
                 if text.startswith(f"Survey {survey}"))
    page.survey.activated.emit(index)
    qtbot.waitUntil(lambda: page._load_task is None and page.model.total_rows < whole,
                    timeout=10_000)
    assert page.scope() == survey


def test_chart_shows_a_bars_day_and_count_and_a_click_filters_the_table(
    optouts_page: Any, qtbot: Any
) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    counts = page.chart.counts
    busiest = int(np.argmax(counts.counts))
    day = str(counts.days[busiest])
    midday = float(counts.days[busiest].astype("datetime64[s]").astype(np.int64)) + 43_200
    assert page.chart.hover_text(midday) == (
        f"{day}: {int(counts.counts[busiest]):,} opt-outs (click to show that day)")
    assert page.chart.hover_text(midday - 10 * 86_400 * 365) == ""  # no bar there
    page.chart.click_at(midday)
    qtbot.waitUntil(lambda: page.model.shown_rows == int(counts.counts[busiest]),
                    timeout=5_000)
    assert page.table.search.text() == day
    page.chart.click_at(midday)  # the same bar again: everything
    qtbot.waitUntil(lambda: page.model.shown_rows == page.model.total_rows, timeout=5_000)


def test_phone_search_matches_any_format_and_cells_read_like_the_operators_world(
    optouts_page: Any, qtbot: Any
) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    phones = page.model.columns.index("Phone")
    values = [page.model.row_values(r)[phones] for r in range(page.model.total_rows)]
    e164 = next(v for v in values if v and v.startswith("+32") and " " not in v)
    national = "0" + e164[3:6] + " " + e164[6:8] + " " + e164[8:]
    page.table.search.setText(national)
    qtbot.waitUntil(lambda: page.model.shown_rows >= 1 and bool(page.model.filter_text),
                    timeout=5000)
    shown = {page.model.row_values(page.model.data_row(r))[phones]
             for r in range(page.model.shown_rows)}
    assert e164 in shown
    # Local time in the locale's format, not an ISO timestamp with seven decimals.
    date = page.model.data(page.model.index(0, page.model.columns.index("DateOptOut")))
    assert "T" not in date and "." not in date and len(date) <= 20
    sources = {page.model.data(page.model.index(r, page.model.columns.index("Source")))
               for r in range(page.model.shown_rows)}
    assert not any("OptoutSourceId" in str(text) for text in sources)
