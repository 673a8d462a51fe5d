"""A table model over columnar data, sorted and filtered by an index computed over the data.

`QSortFilterProxyModel` compares rows one pair at a time through Python (minutes for 1M rows).
Here the model keeps the columns as they came (`dict[str, list]` or numpy arrays) plus `_index`,
the data rows in display order. Sorting argsorts a prepared key array per column (cached);
filtering scans a lower-cased haystack per row (the search columns joined). Both run off the GUI
thread through ui/tasks.py once the data is large; a result computed for an older request (the
user typed again) is dropped. Small data is sorted and filtered in place, synchronously.

Phone columns are searchable in any format: their digits are in the haystack too, and a search
that looks like a phone number ("0470 12 34 56", "+32 470-12", "0032470") is also looked for
as digits without its trunk or international prefix, so it finds "+32470123456".

Roles: DisplayRole (formatted text), RAW_ROLE (the value as stored, for sorting and copying),
ROW_ID_ROLE (the data row number, so a selection can be followed across sorts).
"""

from __future__ import annotations

import datetime
import gc
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from optout_desk.core.identifiers import cell_text
from optout_desk.core.progress import CancelToken, ProgressCallback

RAW_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ID_ROLE = Qt.ItemDataRole.UserRole + 2

ASYNC_THRESHOLD = 50_000  # rows above which sort and filter leave the GUI thread

_SEPARATOR = "\x00"
_ROOT = QModelIndex()
# Work in chunks so no single C call holds the GIL for long: the GUI thread keeps running
# while a worker sorts or indexes a million rows.
_CHUNK = 65_536


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (Qt's QVariant does not take numpy types)."""
    return value.item() if isinstance(value, np.generic) else value


_NUMERIC_TYPES = frozenset({int, float, type(None), np.int64, np.float64})


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start:start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def _text_key(value: Any) -> str:
    return "" if value is None else str(value).lower()


def _texts(values: Sequence[Any], plain_text: bool) -> Sequence[str]:
    if plain_text:
        return values
    return ["" if v is None else v if type(v) is str else str(v) for v in values]


def _lowered_texts(values: Sequence[Any]) -> Sequence[str]:
    """Cells as lower-cased text ("" for empty)."""
    texts = _texts(values, plain_text=False)
    joined = _SEPARATOR.join(texts)
    lowered = joined.lower()  # one C-level call over the chunk, not one per cell
    if lowered == joined:
        return texts  # nothing to lower (most emails): skip making a million new strings
    cells = lowered.split(_SEPARATOR)
    if len(cells) != len(texts):  # a cell contained the separator: do it cell by cell
        cells = [t.lower() for t in texts]
    return cells


def _lowered_text_array(values: Sequence[Any], plain_text: bool = False) -> np.ndarray:
    """Sort keys that ignore case, as one fixed-width numpy bytes array.

    Per chunk of cells: one join, one lower(), one encode and one split, all C-level. The keys
    are UTF-8 bytes: bytewise order is code point order, so the sort is the same as over str,
    but the array is a quarter of a unicode one's size for ASCII text and numpy compares it
    with memcmp."""
    chunks = [_texts(chunk, plain_text) for chunk in _chunks(values)]
    joined = [_SEPARATOR.join(texts) for texts in chunks]
    # Upper case only (timestamps "…T…Z", codes): raw order is already case-blind.
    lower = not all(text.upper() == text for text in joined)
    encoded: list[list[bytes]] = []
    for texts, text in zip(chunks, joined, strict=True):
        parts = (text.lower() if lower else text).encode("utf-8", "surrogatepass").split(b"\x00")
        if len(parts) != len(texts):  # a cell held the separator itself: cell by cell
            parts = [(t.lower() if lower else t).encode("utf-8", "surrogatepass") for t in texts]
        encoded.append(parts)
    width = max((max(map(len, parts), default=0) for parts in encoded), default=0)
    keys = np.empty(len(values), dtype=f"S{max(width, 1)}")
    start = 0
    for parts in encoded:
        keys[start:start + len(parts)] = parts
        start += len(parts)
    return keys


_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]*\d[\d\s().\-/]*")
_NOT_DIGITS = re.compile(r"\D+")
_PHONE_DIGITS_MIN = 3  # "047" is a search for a phone; "4" could be anything


def phone_needle(text: str) -> str | None:
    """The digits a phone-like search looks for, without "00"/"+" or a trunk "0"; None when
    the search is not a phone number."""
    if not _PHONE_LIKE.fullmatch(text):
        return None
    digits = _NOT_DIGITS.sub("", text)
    digits = digits[2:] if digits.startswith("00") else digits.lstrip("0") or digits
    return digits if len(digits) >= _PHONE_DIGITS_MIN else None


def _digits(values: Sequence[Any]) -> list[str]:
    return [_NOT_DIGITS.sub("", v if type(v) is str else str(v)) if v else "" for v in values]


class ColumnIndexer:
    """Sort orders and filter matches over one immutable snapshot of the columns.

    Thread-safe for reading: caches are filled under a lock, and a new data set gets a new
    indexer, so work still running on the old one cannot mix its results in.
    """

    def __init__(self, data: Mapping[str, Sequence[Any]], search_columns: Sequence[str],
                 phone_columns: Sequence[str] = ()) -> None:
        self.data = data
        self.search_columns = tuple(c for c in search_columns if c in data)
        self.phone_columns = tuple(c for c in phone_columns if c in data)
        self.rows = len(next(iter(data.values()))) if data else 0
        self._orders: dict[str, np.ndarray] = {}
        self._ranks: dict[str, np.ndarray] = {}
        self._haystack: list[str] | None = None
        self._last_match: tuple[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    # --- sorting ---------------------------------------------------------------------------

    def order(self, column: str) -> np.ndarray:
        """Data rows in ascending order of `column` (empty values first, case ignored)."""
        with self._lock:
            cached = self._orders.get(column)
        if cached is not None:
            return cached
        order = self._argsort(self.data[column])
        with self._lock:
            self._orders[column] = order
        return order

    def rank(self, column: str) -> np.ndarray:
        """rank[row] = the row's position in `order(column)`; sorts any subset by indexing."""
        with self._lock:
            cached = self._ranks.get(column)
        if cached is not None:
            return cached
        order = self.order(column)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        with self._lock:
            self._ranks[column] = rank
        return rank

    @staticmethod
    def _argsort(values: Sequence[Any]) -> np.ndarray:
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            return np.argsort(values, kind="stable")
        if len(values) == 0:
            return np.array([], dtype=np.int64)
        kinds = set(map(type, values))  # C-level pass; cheaper than isinstance per cell
        if kinds <= _NUMERIC_TYPES:
            # Numbers with gaps: empty cells first (as -inf), then numeric order.
            cells = np.array(values, dtype=object)
            cells[cells == None] = -np.inf  # noqa: E711  (an element-wise comparison)
            return np.argsort(cells.astype(np.float64), kind="stable")
        sample = values[:_CHUNK]
        if len(set(sample)) <= len(sample) // 4:
            # Few distinct values (names, languages, sources): sort those, then sort the rows
            # by an integer code, which numpy does in a few milliseconds.
            ranked = sorted(set(values), key=_text_key)
            code = {value: position for position, value in enumerate(ranked)}
            codes = np.concatenate([
                np.fromiter(map(code.__getitem__, chunk), dtype=np.int64, count=len(chunk))
                for chunk in _chunks(values)
            ])
            return np.argsort(codes, kind="stable")
        return np.argsort(_lowered_text_array(values, plain_text=kinds == {str}), kind="stable")

    # --- filtering -------------------------------------------------------------------------

    def haystack(self) -> list[str]:
        """Per row, the search columns joined by tabs and lower-cased (built once)."""
        with self._lock:
            if self._haystack is not None:
                return self._haystack
        hay: list[str] = []
        columns = [self.data[c] for c in self.search_columns]
        phones = [self.data[c] for c in self.phone_columns]
        if not columns and not phones:
            hay = [""] * self.rows
        for start in range(0, self.rows if columns or phones else 0, _CHUNK):
            parts = [_lowered_texts(column[start:start + _CHUNK]) for column in columns]
            # Phones once more as bare digits, after a separator no search can contain.
            parts += [_digits(column[start:start + _CHUNK]) for column in phones]
            hay.extend(map("\t".join, zip(*parts, strict=True)))
        with self._lock:
            self._haystack = hay
        return hay

    def matches(self, needle: str, cancel: CancelToken | None = None) -> np.ndarray:
        """Data rows (ascending) whose search columns contain `needle` (case ignored), or
        whose phones hold its digits when it looks like a phone number."""
        needle = needle.lower()
        hay = self.haystack()
        digits = phone_needle(needle) if self.phone_columns else None
        last = self._last_match
        if digits is not None:
            found = [i for i, text in enumerate(hay) if needle in text or digits in text]
        elif last is not None and last[0] in needle:
            # The user typed one more character: only the previous matches can still match.
            found = []
            for start in range(0, len(last[1]), _CHUNK):
                candidates = last[1][start:start + _CHUNK].tolist()
                found += [i for i in candidates if needle in hay[i]]
        else:
            found = [i for i, text in enumerate(hay) if needle in text]
        if cancel is not None:
            cancel.raise_if_cancelled()
        # Converted in chunks: one np.array() over a million ints holds the GIL for tens of
        # milliseconds, during which the GUI thread cannot run.
        result = np.concatenate([np.array(found[start:start + _CHUNK], dtype=np.int64)
                                 for start in range(0, len(found), _CHUNK)]
                                or [np.array([], dtype=np.int64)])
        self._last_match = (needle, result)
        return result

    # --- both ------------------------------------------------------------------------------

    def compute(
        self, sort_column: str | None, descending: bool, needle: str,
        cancel: CancelToken | None = None,
    ) -> np.ndarray | None:
        """The display index for a sort and a filter; None means all rows in data order."""
        subset = self.matches(needle, cancel) if needle else None
        if sort_column is None:
            return subset
        if subset is None:
            order = self.order(sort_column)
        else:
            rank = self.rank(sort_column)
            order = subset[np.argsort(rank[subset], kind="stable")]
        return order[::-1].copy() if descending else order


def _ignore(_result: object) -> None:
    """A task whose result is its side effect (a warmed cache)."""


class ColumnarTableModel(QAbstractTableModel):
    """Rows shown = `_index` over the columns; see the module docstring."""

    indexApplied = Signal()  # a sort or filter result is now shown
    busyChanged = Signal(bool)  # a sort or filter is being computed off the GUI thread

    def __init__(
        self,
        columns: Sequence[str],
        *,
        headers: Mapping[str, str] | None = None,
        search_columns: Sequence[str] = (),
        phone_columns: Sequence[str] = (),
        formatters: Mapping[str, Callable[[Any], str]] | None = None,
        export_values: Mapping[str, Callable[[Any], Any]] | None = None,
        export_headers: Mapping[str, str] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.columns: tuple[str, ...] = tuple(columns)
        self.headers = dict(headers or {})
        self.search_columns = tuple(search_columns)
        self.phone_columns = tuple(phone_columns)
        self.formatters = dict(formatters or {})
        # Per column, the value an export writes (a timestamp text as a date cell…).
        self.export_values = dict(export_values or {})
        self.export_headers = dict(export_headers or {})
        self.async_threshold = ASYNC_THRESHOLD
        self._columns_data: list[Sequence[Any]] = [[] for _ in self.columns]
        self._indexer = ColumnIndexer({c: [] for c in self.columns}, self.search_columns,
                                      self.phone_columns)
        self._total = 0
        self._index: np.ndarray | None = None
        self._sort_column: int = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter_text = ""
        self._generation = 0
        self._busy = False
        self._task: Any = None

    # --- data in ---------------------------------------------------------------------------

    def set_columns(self, data: Mapping[str, Sequence[Any]]) -> None:
        """Replace the data; columns missing from `data` show empty. Keeps sort and filter."""
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise ValueError("all columns must have the same length")
        total = lengths.pop() if lengths else 0
        full = {c: data[c] if c in data else [None] * total for c in self.columns}
        self._generation += 1
        self.beginResetModel()
        self._columns_data = [full[c] for c in self.columns]
        self._indexer = ColumnIndexer(full, self.search_columns, self.phone_columns)
        self._total = total
        self._index = None
        self.endResetModel()
        if self._sort_column >= 0 or self._filter_text:
            self._recompute()
        else:
            self.indexApplied.emit()
        if total >= self.async_threshold:
            # Millions of cells are millions of long-lived objects; every cyclic GC pass would
            # walk them all (seconds, with the GIL held) while sorting allocates. Cells hold no
            # cycles, so move everything alive now out of the collector's sight.
            gc.freeze()
            if self.search_columns or self.phone_columns:
                self._warm_haystack()

    def _warm_haystack(self) -> None:
        """Build the search haystack in the background now, so the first keystroke only
        scans it."""
        from optout_desk.ui.tasks import run_task

        indexer = self._indexer
        run_task(self, lambda _p, _c: indexer.haystack(), on_success=_ignore,
                 name="index for search")

    # --- what is shown ---------------------------------------------------------------------

    @property
    def total_rows(self) -> int:
        return self._total

    @property
    def shown_rows(self) -> int:
        return self._total if self._index is None else len(self._index)

    @property
    def filter_text(self) -> str:
        return self._filter_text

    @property
    def busy(self) -> bool:
        return self._busy

    def data_row(self, view_row: int) -> int:
        return view_row if self._index is None else int(self._index[view_row])

    def shown_data_rows(self) -> np.ndarray:
        """Data rows in display order (what an export of "the shown rows" writes)."""
        if self._index is None:
            return np.arange(self._total, dtype=np.int64)
        return self._index

    def row_values(self, data_row: int) -> list[Any]:
        return [_plain(col[data_row]) for col in self._columns_data]

    def export_row(self, data_row: int) -> list[Any]:
        """A row as an export writes it (export_values applied)."""
        values = self.row_values(data_row)
        for position, name in enumerate(self.columns):
            convert = self.export_values.get(name)
            if convert is not None and values[position] is not None:
                values[position] = convert(values[position])
        return values

    def set_value(self, data_row: int, column_name: str, value: Any) -> None:
        """Change one cell (small tables: a status column); the cell repaints."""
        column = self.columns.index(column_name)
        cells = self._columns_data[column]
        if not isinstance(cells, list | np.ndarray):
            cells = self._columns_data[column] = list(cells)
        cells[data_row] = value
        if self._index is None:
            view_row = data_row
        else:
            hits = np.flatnonzero(self._index == data_row)
            if not len(hits):
                return
            view_row = int(hits[0])
        index = self.index(view_row, column)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole])

    def header_titles(self) -> list[str]:
        return [self.headers.get(c, c) for c in self.columns]

    def export_titles(self) -> list[str]:
        """Headers as an export writes them (a UTC time column says so)."""
        return [self.export_headers.get(c, self.headers.get(c, c)) for c in self.columns]

    def display_text(self, column: int, value: Any) -> str:
        if value is None:
            return ""
        formatter = self.formatters.get(self.columns[column])
        if formatter is not None:
            return formatter(value)
        kind = type(value)
        if kind is str:
            return value  # type: ignore[no-any-return]
        # A spreadsheet's number cell reads as Excel shows it (100000.0 -> "100000").
        if kind is float:
            return cell_text(value)
        if kind is datetime.datetime or kind is datetime.date:
            from optout_desk.ui import formatting

            return formatting.when(value) if kind is datetime.datetime else formatting.day(value)
        return str(value)

    # --- Qt model interface ----------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else self.shown_rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < self.shown_rows and 0 <= column < len(self.columns)):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display_text(column, _plain(self._columns_data[column][self.data_row(row)]))
        if role == RAW_ROLE:
            return _plain(self._columns_data[column][self.data_row(row)])
        if role == ROW_ID_ROLE:
            return self.data_row(row)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = 0
    ) -> Any:
        # The tooltip: a header cut down to fit ends in "…" and shows its whole title here.
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if orientation == Qt.Orientation.Horizontal:
            if 0 <= section < len(self.columns):
                return self.headers.get(self.columns[section], self.columns[section])
            return None
        return section + 1

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        column = column if 0 <= column < len(self.columns) else -1
        if self._task is not None and (column, order) == (self._sort_column, self._sort_order):
            # This very sort is being computed: QTableView.sortByColumn asks twice (it sets
            # the header's indicator, which sorts, then sorts again), and restarting would run
            # two million-row sorts side by side on one GIL.
            return
        self._sort_column = column
        self._sort_order = order
        self._recompute(sorting=True)

    # --- filtering -------------------------------------------------------------------------

    def set_filter_text(self, text: str) -> None:
        text = text.strip()
        if text == self._filter_text:
            return
        self._filter_text = text
        self._recompute()

    # --- computing and applying the index --------------------------------------------------

    def _request(self) -> tuple[str | None, bool, str]:
        column = self.columns[self._sort_column] if self._sort_column >= 0 else None
        return column, self._sort_order == Qt.SortOrder.DescendingOrder, self._filter_text

    def _recompute(self, sorting: bool = False) -> None:
        self._generation += 1
        generation = self._generation
        indexer = self._indexer
        column, descending, needle = self._request()
        if self._task is not None:
            self._task.cancel()  # its result would be stale anyway
            self._task = None
        if self._total < self.async_threshold:
            self._apply(generation, indexer.compute(column, descending, needle), sorting)
            return
        from optout_desk.ui.tasks import run_task

        def work(_progress: ProgressCallback, cancel: CancelToken) -> np.ndarray | None:
            return indexer.compute(column, descending, needle, cancel)

        self._set_busy(True)
        self._task = run_task(
            self, work,
            on_success=lambda index: self._apply(generation, index, sorting),
            on_failure=lambda exc: self._failed(generation, exc),
            name="sort/filter",
        )

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return  # a newer request superseded this one (it was cancelled on purpose)
        self._task = None
        self._set_busy(False)
        from optout_desk.core.errors import Cancelled

        if not isinstance(exc, Cancelled):
            raise exc  # a bug in sorting: let the crash handler report it

    def _apply(self, generation: int, index: np.ndarray | None, sorting: bool) -> None:
        if generation != self._generation:
            return  # stale: the user asked for something else meanwhile
        self._task = None
        if sorting and (index is None or len(index) == self.shown_rows):
            self._apply_layout(index)
        else:
            self.beginResetModel()
            self._index = index
            self.endResetModel()
        self._set_busy(False)
        self.indexApplied.emit()

    def _apply_layout(self, index: np.ndarray | None) -> None:
        """Same rows, new order: keep selections and the current cell on their rows."""
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        old_rows = [self.data_row(p.row()) for p in persistent]
        self._index = index
        if persistent:
            if index is None:
                position = np.arange(self._total, dtype=np.int64)
            else:
                position = np.empty(self._total, dtype=np.int64)
                position[index] = np.arange(len(index), dtype=np.int64)
            moved = [self.index(int(position[r]), p.column()) for p, r in zip(
                persistent, old_rows, strict=True)]
            self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)
