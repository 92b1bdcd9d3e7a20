"""Tables that fit the terminal: columns dropped by priority, long text folded, nothing cut.

Rich squeezes every column of a table that is too wide, so on an 80-column terminal a
date became "2026-12-..." and a header "last se". Here each column says how much it
matters (priority 0 is always shown, the highest number goes first) and whether its text
may fold onto more lines (paths, errors); the columns that do not fit at the console's
width are left out, and the ones kept are never cut short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.table import Table
from rich.text import Text

FOLD_MIN_WIDTH = 20
"""Characters a folding column keeps before lower-priority columns are dropped for it."""

CELL_OVERHEAD = 3
"""Characters each column adds around its text: one border and a space on either side."""


@dataclass(frozen=True)
class Column:
    header: str
    priority: int = 0      # 0: always shown; when too wide, the highest number is dropped first
    fold: bool = False     # long text folds onto more lines instead of widening the table
    width: int | None = None   # a fixed width, for cells that are not text (a progress bar)


def text_width(cell: Any) -> int:
    """Terminal cells a table cell needs on one line (markup such as [red]...[/] not counted)."""
    if isinstance(cell, Text):
        return cell.cell_len
    return Text.from_markup(str(cell)).cell_len if isinstance(cell, str) else 0


def needed_width(column: Column, cells: Sequence[Any]) -> int:
    """Width of a column's text: its longest cell or header; a folding one at most FOLD_MIN_WIDTH."""
    if column.width is not None:
        return max(column.width, len(column.header))
    if column.fold:
        widest = max([text_width(c) for c in cells] + [max(len(w) for w in column.header.split())])
        return min(widest, FOLD_MIN_WIDTH)
    return max([text_width(c) for c in cells] + [len(column.header)])


def columns_that_fit(columns: Sequence[Column], rows: Sequence[Sequence[Any]], width: int) -> list[int]:
    """Indexes of the columns to show at `width`: all of them, less the least important
    (highest priority number, the rightmost of equals) until the rest fit."""
    widths = [needed_width(col, [row[i] for row in rows]) for i, col in enumerate(columns)]
    keep = list(range(len(columns)))
    while sum(widths[i] + CELL_OVERHEAD for i in keep) + 1 > width:
        droppable = [i for i in keep if columns[i].priority > 0]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda i: (columns[i].priority, i)))
    return keep


def fitted_table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], width: int, **table_args: Any) -> Table:
    """A Rich Table of `rows` with the columns that fit in `width` terminal cells."""
    keep = columns_that_fit(columns, rows, width)
    table = Table(**table_args)
    for i in keep:
        col = columns[i]
        table.add_column(col.header, no_wrap=not col.fold, overflow="fold" if col.fold else "ellipsis",
                         width=col.width)
    for row in rows:
        table.add_row(*[row[i] for i in keep])
    return table
