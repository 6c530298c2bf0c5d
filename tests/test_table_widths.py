"""Column widths measured off the event loop (`measure_columns`): the fast path that takes len()
for the tables' own marks (± ★ † … ● ⚑ · →) must give what rich's cell_len gives, and wide
characters must still count two cells."""

from __future__ import annotations

from rich.cells import cell_len

from fbtui.tui.widgets.table import _NARROW, Column, Row, measure_columns


def test_the_marks_taken_as_one_cell_are_one_cell_in_rich() -> None:
    assert all(cell_len(c) == 1 for c in _NARROW)


def test_widths_match_cell_len_with_marks_and_with_wide_characters() -> None:
    cells = [["0.9123 ± 0.0012 ★", "a…b", "x"], ["0.9 † ●⚑", "mnist", "日本語のラベル"], ["1", "", "plain"]]
    cols = [Column("m", "M"), Column("n", "N"), Column("w", "W", max_width=99)]
    measure_columns(cols, [Row(i, c) for i, c in enumerate(cells)])
    for j, col in enumerate(cols):
        assert col.width == max(cell_len(col.label), *(cell_len(r[j]) for r in cells)), col.key
    assert cols[2].width == 14  # seven wide characters


def test_rows_shorter_than_the_header_and_styled_cells_are_measured_too() -> None:
    from rich.text import Text

    cols = [Column("a", "A"), Column("b", "B")]
    measure_columns(cols, [Row(1, ["abcdef"]), Row(2, [Text("xy"), "longer cell"])])
    assert (cols[0].width, cols[1].width) == (6, 11)
    cols = [Column("a", "A"), Column("b", "B")]
    measure_columns(cols, [Row(1, [Text("abcdefgh"), "z"]), Row(2, ["x", Text("★ ok")])])
    assert (cols[0].width, cols[1].width) == (8, 4)
