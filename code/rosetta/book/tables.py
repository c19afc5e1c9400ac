"""Tables as the book shows them: no pandas index, words that wrap, numbers kept compact.

A chapter ends a cell with ``tables.text(df)`` for a table of words (claims, the run report,
settings) or ``tables.numbers(df)`` for a table of measurements, instead of ``df`` itself:

* neither shows pandas' row numbers; a meaningful index (``set_index("link")``) becomes the
  first column;
* ``text`` spreads over the text column, aligns left and wraps long cells, so that prose is
  not squeezed into narrow columns or pushed off the page;
* ``numbers`` is only as wide as its contents and shows each number to ``digits``
  significant figures (:func:`compact`), aligned right, a missing value as "–";
* ``formats`` maps a column to a format string (``{"tolerance": "{:.0e}"}``) where the
  default does not suit it.

Both return a pandas ``Styler``, which Jupyter, Colab and myst-nb render as HTML with the
theme's table look (the ``dataframe`` class).
"""
import math
import numbers as _numbers

import pandas as pd

MISSING = "–"

_COMMON = [
    {"selector": "", "props": "border-collapse: collapse; margin: 0.5em 0;"},
    {"selector": "th, td", "props": "vertical-align: top;"},
    {"selector": "th", "props": "white-space: normal;"},
]
_TEXT = _COMMON + [
    {"selector": "", "props": "width: 100%; font-size: 0.9em;"},
    {"selector": "th, td", "props": "padding: 0.25em 0.45em; text-align: left; white-space: normal; "
                                    "overflow-wrap: break-word;"},
]
_NUMBERS = _COMMON + [
    {"selector": "", "props": "width: auto; font-size: 0.85em; font-variant-numeric: tabular-nums;"},
    {"selector": "th, td", "props": "padding: 0.2em 0.45em;"},
]


def compact(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without needless exponents.

    1304.17 -> "1304", 64.7365 -> "64.7", 0.38521 -> "0.385", 3.2e-7 -> "3.2e-07",
    None or NaN -> "–"; integers, booleans and text as they are.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, _numbers.Real):
        return str(value)
    if isinstance(value, _numbers.Integral):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return MISSING
    if value == 0 or math.isinf(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(float(f"{value:.{digits}g}"))))  # after rounding: 99.96 -> 100
    if magnitude >= digits - 1:
        return f"{value:.0f}"
    if magnitude >= -3:
        return f"{value:.{digits - 1 - magnitude}f}"
    return f"{value:.{digits - 1}e}"


def _frame(df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        return df
    if df.index.nlevels == 1 and df.index.name is None:
        df = df.rename_axis("")  # row labels without a name: a column without a heading
    return df.reset_index()


def _styled(df, styles, digits, formats) -> "pd.io.formats.style.Styler":
    df = _frame(df)
    unknown = sorted(set(formats) - set(df.columns))
    if unknown:
        raise KeyError(f"formats name columns the table lacks: {unknown}; its columns are {list(df.columns)}")
    default = {c: (lambda v: compact(v, digits)) for c in df.columns if c not in formats}
    return (df.style.hide(axis="index")
            .format({**default, **formats}, na_rep=MISSING, escape="html")
            .set_table_attributes('class="dataframe"')
            .set_table_styles(styles))


def text(df, digits: int = 3, **formats):
    """A table of words: full text-column width, left-aligned, long cells wrapped, no index."""
    return _styled(df, _TEXT, digits, formats)


def numbers(df, digits: int = 3, **formats):
    """A table of measurements: as narrow as its contents, numbers compact and aligned right, no index."""
    sty = _styled(df, _NUMBERS, digits, formats)
    align = {}
    for c in sty.data.columns:
        right = pd.api.types.is_numeric_dtype(sty.data[c])   # numbers right, on one line; words left
        side = "right" if right else "left"
        align[c] = [{"selector": "th", "props": f"text-align: {side};"},
                    {"selector": "td", "props": f"text-align: {side}; white-space: {'nowrap' if right else 'normal'};"}]
    return sty.set_table_styles(align, overwrite=False)
