"""The pages' paged lists: page size, the window shown, and links that keep every filter.

Two kinds of list share one pager (``templates/_lists.html``):

- lists of covered subjects, paged by key (``serving.services.subject_lists``, the API's lists):
  the page's ``after`` cursor goes in the "next" link; ``n`` (rows before this page) only numbers
  the rows shown, as a key page does not know its position;
- lists bounded by one subject or one plan (a subject's records, a plan's visits, a department's
  queue), paged by position (``page``).

Every link is the current URL with some parameters changed, so filters, sorting, page size and the
read's purpose are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

PAGE_SIZES = (10, 20, 50, 100, 200)
DEFAULT_SIZE = 50


def link(request: Request, prefix: str = "", anchor: str = "", **changes: Any) -> str:
    """The current page's URL with ``changes`` (names prefixed by ``prefix``; None or "" removes)."""
    params = {k: v for k, v in request.query_params.multi_items() if k != "lang"}
    for key, value in changes.items():
        params.pop(prefix + key, None)
        if value not in (None, ""):
            params[prefix + key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}{'?' + query if query else ''}{'#' + anchor if anchor else ''}"


def page_size(value: str | None) -> int:
    """A page size the pages offer (anything else: the default)."""
    try:
        size = int(value or DEFAULT_SIZE)
    except ValueError:
        return DEFAULT_SIZE
    return size if size in PAGE_SIZES else DEFAULT_SIZE


def _count(value: str | None, cap: int = 10_000_000) -> int:
    try:
        return min(max(int(value or 0), 0), cap)
    except ValueError:
        return 0


@dataclass
class Window:
    """One page of a list as the pager shows it."""

    items: list[Any]
    total: int
    start: int  # the first row's number (1-based); 0 when empty
    size: int
    next_url: str | None
    prev_url: str | None
    first_url: str | None
    sizes: list[tuple[int, str, bool]] = field(default_factory=list)  # (size, url, current)
    anchor: str = ""

    @property
    def end(self) -> int:
        return self.start + len(self.items) - 1 if self.items else 0

    @property
    def offset(self) -> int:
        return max(self.start - 1, 0)


def _sizes(request: Request, prefix: str, anchor: str, current: int, reset: dict[str, Any]) -> list:
    return [(s, link(request, prefix, anchor, size=s, **reset), s == current) for s in PAGE_SIZES]


def position_window(request: Request, rows: Sequence[Any], *, prefix: str = "", anchor: str = "") -> Window:
    """A page of ``rows`` (a bounded list: one subject's records, one plan's visits) by position:
    ``<prefix>page`` (1-based) and ``<prefix>size``."""
    return counted_window(request, len(rows), lambda start, size: list(rows[start:start + size]),
                          prefix=prefix, anchor=anchor)


def counted_window(request: Request, total: int, fetch: Callable[[int, int], list[Any]] | None = None, *,
                   prefix: str = "", anchor: str = "") -> Window:
    """A page by position of a list of ``total`` rows; ``fetch(start, size)`` reads its rows
    (None: the caller reads them from the window's ``start`` and ``size``)."""
    size = page_size(request.query_params.get(prefix + "size"))
    pages = max(1, -(-total // size))
    number = min(max(_count(request.query_params.get(prefix + "page")), 1), pages)
    start = (number - 1) * size
    items = fetch(start, size) if fetch else []
    return Window(items=items, total=total, start=start + 1 if total else 0, size=size,
                  next_url=link(request, prefix, anchor, page=number + 1) if number < pages else None,
                  prev_url=link(request, prefix, anchor, page=number - 1 if number > 2 else None)
                  if number > 1 else None,
                  first_url=link(request, prefix, anchor, page=None) if number > 2 else None,
                  sizes=_sizes(request, prefix, anchor, size, {"page": None}), anchor=anchor)


def _rows_before(claimed: int, *, size: int, shown: int, total: int, more: bool, after_first: bool | None) -> int:
    """The rows before a key page, from the URL's ``n`` (``claimed``): a hint the links carry, which
    an edited or shared link can make anything, kept within what the page knows without a query.

    At least the cursor's row is before the page (more than a page of rows when the page before is
    not the first, ``after_first`` False; at most a page when it is, True; None: not known), and
    the rows before, the rows shown and the rows after (one at least if ``more``) fit in ``total``.
    An ``n`` outside those bounds is replaced: on the last page and on the second by the rows
    before they must have (exact), elsewhere by the nearest bound, down to a whole number of pages
    (the links only ever make those): a guess within the list. Counting the rows before the cursor would make it exact everywhere, at the
    cost of a count per page for a link nobody is given; a bad ``n`` is not worth an error page."""
    high = max(total - shown - (1 if more else 0), 0)
    if after_first:
        high = min(high, size)
    low = min(size + 1 if after_first is False else 1, high)
    if low <= claimed <= high:
        return claimed
    if not more or after_first:  # the last page, the second: the rows before are what the total leaves
        return high
    near = min(max(claimed, low), high)
    return max(near - near % size, low)


def key_window(request: Request, items: list[Any], total: int, next_cursor: str | None, *,
               previous: str | None = None, previous_read: bool = False, anchor: str = "") -> Window:
    """A page of a list paged by key (``after``): "next" carries the cursor, "previous" the cursor
    the page before was opened with (``previous``, None: the first page), "first" drops it.
    ``previous_read``: the caller read ``previous`` (a list that does not says None for every page),
    so it bounds the row numbers shown (:func:`_rows_before`)."""
    size = page_size(request.query_params.get("size"))
    paged = bool(request.query_params.get("after"))
    before = _rows_before(_count(request.query_params.get("n")), size=size, shown=len(items), total=total,
                          more=bool(next_cursor), after_first=(previous is None) if previous_read else None) \
        if paged else 0
    back = max(before - size, 0) if previous else None
    return Window(items=items, total=total, start=before + 1 if items else 0, size=size,
                  next_url=link(request, "", anchor, after=next_cursor, n=before + len(items)) if next_cursor else None,
                  prev_url=link(request, "", anchor, after=previous, n=back) if paged else None,
                  first_url=link(request, "", anchor, after=None, n=None) if paged else None,
                  sizes=_sizes(request, "", anchor, size, {"after": None, "n": None}), anchor=anchor)


__all__ = ["DEFAULT_SIZE", "PAGE_SIZES", "Window", "counted_window", "key_window", "link", "page_size", "position_window"]
