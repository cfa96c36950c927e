"""Text out of a PDF, in-process with pypdfium2: its own reading order, and a layout-preserving text rebuilt
from the characters' positions the way poppler's ``pdftotext -layout`` lays a page out.

Why (measured on this machine, invoice2data 1.0.1's own sample PDFs and our generated invoices):

- pypdfium2 opens the file in-process in 2-13 ms per document and tells a damaged or encrypted PDF apart
  (it raises), so it is the reader of record: it decides "unreadable" and "no text layer".
- Its text keeps no columns ("Émetteur Client" on one line, values mixed underneath). invoice2data's
  templates were written against ``pdftotext -layout`` (5 of 11 samples extract on pypdfium2's text, 10 of
  11 on poppler's), and the generic extractor reads column headings with their values. But poppler as a
  subprocess cost 10-30 ms a document, ~70 % of a warm worker's extraction time.
- So ``layout_page`` rebuilds that text from pypdfium2's word boxes with poppler's rules: words on one
  baseline and close together form a fragment (one cell); fragments on successive lines that overlap form
  blocks; a block starts 3 columns after every block wholly to its left (or in proportion inside one it
  overlaps), a line inside its block under the character of the line above it; vertical gaps become
  blank lines. On the samples 588 of 631 lines are identical to poppler's, 615 have the same words, and
  every sample gives its expected output with no pdftotext at all; reading the words and laying them out
  costs ~60 % on top of pypdfium2's bare text (3.3 ms a document vs 2.1 ms). ``pdftotext_layout``
  remains for the caller that finds a template whose keywords are in our text but that extracts nothing
  from it (a layout detail we do not reproduce).

Text is read from the first ``MAX_PAGES`` only: invoices are short, and a 2,000-page PDF must not hold a
worker.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import operator
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_c

logger = logging.getLogger(__name__)

MAX_PAGES = 50
PDFTOTEXT_TIMEOUT = 60  # seconds; a pathological file must not hold the job until its RQ timeout
MIN_TEXT_CHARS = 20  # fewer non-blank characters than this: a scan, no usable text layer

# Layout rules, in font sizes (poppler's values, which the templates were written against).
MAX_INTRA_LINE_DELTA = 0.5  # baselines closer than this: one line
MAX_WORD_SPACING = 1.5  # a wider gap between two words of a line starts a new fragment (another cell)
MAX_LINE_SPACING = 1.5  # lines whose baselines are closer than this can belong to one block (paragraph)
MAX_BLANK_LINES = 4  # a vertical gap of n font sizes gives n - 1 blank lines, at most this many
MAX_OVERLAPPING = 64  # placing a fragment, it is compared with at most this many overlapping ones

_WORD = re.compile(r"\S+")
_NOISE = str.maketrans("", "", "\ufeff\ufffe\x00")
_BASE, _LEFT, _COL, _RIGHT = (operator.attrgetter(name) for name in ("base", "left", "col", "right"))
_TOP_LEFT, _LEFT_BASE, _LEFT_TOP = (operator.attrgetter(*names) for names in (("top", "left"), ("left", "base"),
                                                                             ("left", "top")))


class PdfUnreadable(Exception):
    """The file is not a PDF we can open (damaged, truncated, encrypted, not a PDF at all)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PdfPasswordProtected(PdfUnreadable):
    """The PDF needs a user password to be opened (an owner password alone does not stop reading)."""

    def __init__(self) -> None:
        super().__init__("password-protected")


def enough_text(text: str) -> bool:
    """At least ``MIN_TEXT_CHARS`` non-blank characters: less is a scan, a blank page, no usable text."""
    return len(re.sub(r"\s+", "", text)) >= MIN_TEXT_CHARS


@dataclass(frozen=True)
class PdfText:
    pages: int  # pages in the document (text is read from the first MAX_PAGES only)
    text: str  # pypdfium2's text, in its reading order
    layout: str | None  # the layout-preserving text (``layout_page``); None when there is no text layer

    @cached_property
    def has_text(self) -> bool:
        return enough_text(self.text)

    @property
    def best(self) -> str:
        """The text to read fields from: the layout text when there is one."""
        return self.layout if self.layout and self.layout.strip() else self.text


@dataclass(slots=True)
class Word:
    """A word on a page as it is displayed: points from the top-left corner (pdftotext's ``-bbox`` convention)."""

    left: float
    top: float
    right: float
    bottom: float
    base: float  # baseline
    size: float  # font size on the page (text and page matrices applied)
    text: str
    first: float  # where its first character ends (left + that character's advance)


def _short(exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    inner = re.search(r"\(PDFium: ([^)]*)\)", message)  # "Failed to load document (PDFium: Data format error)."
    return (inner.group(1) if inner else message)[:160]


def open_pdf(data: bytes) -> pypdfium2.PdfDocument:
    """``data`` opened with pypdfium2; ``PdfPasswordProtected`` or ``PdfUnreadable`` when it cannot be."""
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise PdfPasswordProtected() from exc
        raise PdfUnreadable(_short(exc)) from exc


# PDFium is not thread-safe: one call at a time in a process, whatever the document (pypdfium2's docs).
# The worker runs one job at a time, but the web process serves requests in threads (page thumbnails,
# testing a template): whoever calls pypdfium2 outside the worker holds this lock.
PDFIUM_LOCK = threading.RLock()


def read_pdf(data: bytes, max_pages: int = MAX_PAGES) -> PdfText:
    """The text of ``data`` (pypdfium2's and the layout one); raises ``PdfUnreadable`` with a short detail a
    person can understand."""
    with PDFIUM_LOCK:
        return _read_pdf(data, max_pages)


def _read_pdf(data: bytes, max_pages: int) -> PdfText:
    document = open_pdf(data)
    try:
        pages = len(document)
        if pages == 0:
            raise PdfUnreadable("the document has no pages")
        texts: list[str] = []
        layouts: list[str] = []
        words_by_page: dict[int, list[Word]] = {}
        errors = 0
        for index in range(min(pages, max_pages)):
            try:
                text, words = read_page(document, index)
            except pypdfium2.PdfiumError:
                errors += 1  # one damaged page: keep the others
                continue
            texts.append(text)
            layouts.append(layout_page(words))
            words_by_page[index + 1] = words
        if errors and not texts:
            raise PdfUnreadable("no page could be read")
    finally:
        document.close()
    text = "\n".join(texts).replace("\r\n", "\n").replace("\r", "\n")
    if "\ufeff" in text or "\ufffe" in text or "\x00" in text:
        text = text.translate(_NOISE)
    if not enough_text(text):
        return PdfText(pages=pages, text=text, layout=None)
    global _last_words
    _last_words = (data, words_by_page)
    return PdfText(pages=pages, text=text, layout="\n".join(layouts))


# The words of the last document read, for its template's area fields (``AreaReader``) right after: the
# same bytes object, not a copy, so that a page is not read twice. One document only.
_last_words: tuple[bytes, dict[int, list[Word]]] | None = None


# Words -------------------------------------------------------------------------------------------


def _display(page: pypdfium2.PdfPage) -> Callable[[float, float], tuple[float, float]]:
    """PDF user space -> the page as displayed (``/Rotate`` applied, origin top-left, y downwards)."""
    left, bottom, right, top = page.get_cropbox()
    rotation = page.get_rotation()
    if rotation == 90:
        return lambda x, y: (y - bottom, x - left)
    if rotation == 180:
        return lambda x, y: (right - x, y - bottom)
    if rotation == 270:
        return lambda x, y: (top - y, right - x)
    return lambda x, y: (x - left, top - y)


def read_page(document: pypdfium2.PdfDocument, index: int) -> tuple[str, list[Word]]:
    """pypdfium2's text of one page and its words with their boxes.

    Only the first and last characters of each word are measured (their "loose" boxes: advance width and
    font ascent/descent, as poppler measures): pypdfium2 has already split the text into words and lines,
    and a call per character would cost more than the text itself.
    """
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            return _page_words(page, textpage)
        finally:
            textpage.close()
    finally:
        page.close()


def _page_words(page: pypdfium2.PdfPage, textpage: pypdfium2.PdfTextPage) -> tuple[str, list[Word]]:
    raw = textpage.raw
    count = textpage.count_chars()
    text = textpage.get_text_range() if count > 0 else ""
    if len(text) != count:  # pdfium's text and its character list disagree (rare): one character at a time
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(raw, i) or 0xFFFE) for i in range(count))
    crop_left, _, _, crop_top = page.get_cropbox()
    display = None if page.get_rotation() == 0 else _display(page)
    box = pdfium_c.FS_RECTF()
    box_ref = ctypes.byref(box)
    matrix = pdfium_c.FS_MATRIX()
    matrix_ref = ctypes.byref(matrix)
    x, y = ctypes.c_double(), ctypes.c_double()
    x_ref, y_ref = ctypes.byref(x), ctypes.byref(y)
    loose_box, origin, get_matrix, font_size = (pdfium_c.FPDFText_GetLooseCharBox, pdfium_c.FPDFText_GetCharOrigin,
                                                pdfium_c.FPDFText_GetMatrix, pdfium_c.FPDFText_GetFontSize)
    # The font size on the page (poppler's unit for every layout threshold) and the baseline take three more
    # calls; words whose boxes have the same height are set in the same font and size, so they are measured
    # once per height (the baseline as its distance above the box's bottom).
    metrics: dict[int, tuple[float, float]] = {}
    noisy = "\ufeff" in text or "\ufffe" in text or "\x00" in text
    words: list[Word] = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        if not loose_box(raw, start, box_ref):
            continue  # a character pdfium generated itself has no box
        x0, x1, y0, y1 = box.left, box.right, box.bottom, box.top
        first_box = (x0, x1, y0, y1)
        if end - start > 1 and loose_box(raw, end - 1, box_ref):
            if box.left < x0:
                x0 = box.left
            if box.right > x1:
                x1 = box.right
            if box.bottom < y0:
                y0 = box.bottom
            if box.top > y1:
                y1 = box.top
        if display is None:
            left, right, top, bottom = x0 - crop_left, x1 - crop_left, crop_top - y1, crop_top - y0
            first = first_box[1] - crop_left
        else:  # a turned page: boxes as displayed (text drawn turned the other way reads along x again)
            left, top = display(x0, y1)
            right, bottom = display(x1, y0)
            left, right = min(left, right), max(left, right)
            top, bottom = min(top, bottom), max(top, bottom)
            fx0, fx1, fy0, fy1 = first_box
            first = max(display(fx0, fy1)[0], display(fx1, fy0)[0])
        key = int((bottom - top) * 100)
        known = metrics.get(key)
        if known is None:
            size = font_size(raw, start)
            if get_matrix(raw, start, matrix_ref):
                size *= abs(matrix.a * matrix.d - matrix.b * matrix.c) ** 0.5
            height = bottom - top
            if size <= 0 or size > 4 * height:  # a text matrix pdfium does not report: go by the box
                size = height or 1.0
            origin(raw, start, x_ref, y_ref)
            base = crop_top - y.value if display is None else display(x.value, y.value)[1]
            lift = bottom - base if top - 1 <= base <= bottom + 1 else 0.0  # text turned within the page: its box
            metrics[key] = known = (size, lift)
        word = match.group()
        if noisy:
            word = word.translate(_NOISE)
            if not word:
                continue
        words.append(Word(left, top, right, bottom, bottom - known[1], known[0], word, first))
    return text, words


# Layout ------------------------------------------------------------------------------------------


class _Fragment:
    """Words on one line with small gaps between them, written with single spaces: one cell of the layout."""

    __slots__ = ("words", "text", "left", "right", "top", "base", "size", "col")

    def __init__(self, words: list[Word]) -> None:
        first = words[0]
        self.words = words
        self.text = " ".join([w.text for w in words]) if len(words) > 1 else first.text
        self.left, self.right, self.top = first.left, first.right, first.top
        for word in words:  # sorted by left already; a long word may still reach further than the next
            if word.right > self.right:
                self.right = word.right
            if word.top < self.top:
                self.top = word.top
        self.base, self.size = first.base, first.size
        self.col = 0

    def chars_left_of(self, x: float) -> int:
        """How many of its characters (the spaces between its words included) have their middle at or left
        of ``x``. The first character of each word was measured; the others are spread evenly over the rest
        of the word."""
        count = 0
        previous: Word | None = None
        for word in self.words:
            if previous is not None:
                if x < (previous.right + word.left) / 2:
                    return count
                count += 1  # the space between them
            if x < (word.left + word.first) / 2:
                return count
            rest = len(word.text) - 1
            if rest and x < word.right:
                inside = int((x - word.first) * rest / ((word.right - word.first) or 1.0) + 0.5)
                if inside < rest:
                    return count + 1 + max(inside, 0)
            count += 1 + rest
            previous = word
        return count


def _fragments(words: list[Word]) -> list[_Fragment]:
    """Words grouped into lines (by baseline), and lines cut where a gap is wider than ``MAX_WORD_SPACING``."""
    words = sorted(words, key=_BASE)
    lines: list[list[Word]] = []
    limit = float("-inf")
    for word in words:
        if word.base <= limit:
            lines[-1].append(word)
        else:
            lines.append([word])
            limit = word.base + MAX_INTRA_LINE_DELTA * word.size
    fragments: list[_Fragment] = []
    for line in lines:
        if len(line) > 1:
            line.sort(key=_LEFT)
        current: list[Word] = [line[0]]
        for word in line[1:]:
            last = current[-1]
            if word.text == last.text and abs(word.left - last.left) < 0.1 * last.size:
                continue  # the same word drawn twice (fake bold, shadow)
            if word.left - last.right > MAX_WORD_SPACING * last.size:
                fragments.append(_Fragment(current))
                current = []
            current.append(word)
        fragments.append(_Fragment(current))
    return fragments


def _blocks(fragments: list[_Fragment]) -> list[list[_Fragment]]:
    """Fragments linked into blocks (paragraphs, table columns): a fragment joins the one on a line above
    when their baselines are at most ``MAX_LINE_SPACING`` font sizes apart, they overlap horizontally and
    have the same font size."""
    order = sorted(fragments, key=_BASE)
    count = len(order)
    parent = list(range(count))  # union-find over positions in ``order``

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bases = [f.base for f in order]
    for position, upper in enumerate(order):
        same_line = upper.base + MAX_INTRA_LINE_DELTA * upper.size
        limit = upper.base + MAX_LINE_SPACING * upper.size
        first = bisect.bisect_right(bases, same_line, position + 1)
        for other in range(first, min(count, first + 4 * MAX_OVERLAPPING)):  # the next line's fragments
            lower = order[other]
            if lower.base > limit:
                break
            if (lower.base > same_line and lower.left < upper.right and upper.left < lower.right
                    and abs(lower.size - upper.size) < 0.05 * upper.size):
                parent[root(other)] = root(position)
    groups: dict[int, list[_Fragment]] = {}
    for position, fragment in enumerate(order):
        groups.setdefault(root(position), []).append(fragment)
    return list(groups.values())


class _Span:
    """Something to place in columns: a fragment (a line of a block) or a whole block."""

    __slots__ = ("left", "right", "top", "width", "col", "item")

    def __init__(self, left: float, right: float, top: float, width: int, item: Any) -> None:
        self.left, self.right, self.top, self.width, self.col, self.item = left, right, top, width, 0, item


def _sweep(spans: list[_Span], gap: int, proportional: bool) -> None:
    """Columns for ``spans`` (sorted by left edge): each starts ``gap`` columns after the end of every span
    wholly to its left, and at least where its left edge falls inside each span it overlaps horizontally:
    under that span's character there (lines of a block), or in proportion to its width (blocks).

    Spans wholly to the left are folded into one running maximum as the sweep goes right, so a span is
    compared only with those still overlapping it, the last ``MAX_OVERLAPPING`` of them (a page of a
    thousand lines must not cost a million comparisons; real pages never come near).
    """
    by_right = sorted(spans, key=_RIGHT)
    placed: set[int] = set()
    folded, left_of = 0, 0
    active: list[_Span] = []
    for span in spans:
        x = span.left
        while folded < len(by_right):
            other = by_right[folded]
            if not (other.right < x or (not proportional and other.right == x)) or id(other) not in placed:
                break
            if other.col + other.width + gap > left_of:
                left_of = other.col + other.width + gap
            folded += 1
        col = left_of
        still: list[_Span] = []
        for other in active:
            end = other.col + other.width
            if other.right < x or (not proportional and other.right == x):
                candidate = end + gap  # not folded yet (ties in the order)
            else:
                still.append(other)
                if end <= col:  # cannot push this one further right
                    continue
                if proportional:
                    extent = other.right - other.left
                    candidate = other.col + (int((x - other.left) / extent * other.width) if extent > 0 else 0)
                else:
                    candidate = other.col + other.item.chars_left_of(x)
            if candidate > col:
                col = candidate
        span.col = col
        placed.add(id(span))
        still.append(span)
        active = still[-MAX_OVERLAPPING:] if len(still) > MAX_OVERLAPPING else still


def _assign_columns(fragments: list[_Fragment]) -> None:
    """Columns the way poppler assigns them, in two steps (both with ``_sweep``).

    Within a block, each line starts one column after every line wholly to its left, and at least under
    the character of an overlapping line it starts under. Between blocks (taken left to right), a block
    starts 3 columns after every block wholly to its left, or in proportion to where it starts inside one
    that it overlaps horizontally.
    """
    blocks: list[_Span] = []
    for block in _blocks(fragments):
        if len(block) > 1:
            block.sort(key=_LEFT_BASE)
            if len(block) <= MAX_OVERLAPPING:  # most blocks have a few lines: compare them all directly
                for n, line in enumerate(block):
                    col = 0
                    for other in block[:n]:
                        if line.left >= other.right:
                            col = max(col, other.col + len(other.text) + 1)
                        elif other.col + len(other.text) > col:
                            col = max(col, other.col + other.chars_left_of(line.left))
                    line.col = col
            else:
                lines = [_Span(f.left, f.right, f.top, len(f.text), f) for f in block]
                _sweep(lines, 1, proportional=False)
                for span in lines:
                    span.item.col = span.col
            width = max(f.col + len(f.text) for f in block)
            span = _Span(block[0].left, max(f.right for f in block), min(f.top for f in block), width, block)
        else:
            span = _Span(block[0].left, block[0].right, block[0].top, len(block[0].text), block)
        blocks.append(span)
    blocks.sort(key=_LEFT_TOP)
    _sweep(blocks, 3, proportional=True)
    for span in blocks:
        if span.col:
            for line in span.item:
                line.col += span.col


def layout_page(words: list[Word]) -> str:
    """One page's words as ``pdftotext -layout`` would print them (columns as runs of spaces)."""
    if not words:
        return ""
    fragments = _fragments(words)
    _assign_columns(fragments)
    fragments.sort(key=_TOP_LEFT)
    lines: list[str] = []
    i = 0
    previous: _Fragment | None = None
    while i < len(fragments):
        # fragments on the same baseline as the first one make one printed line, in column order
        first = fragments[i]
        j = i + 1
        while j < len(fragments) and abs(fragments[j].base - first.base) < MAX_INTRA_LINE_DELTA * first.size:
            j += 1
        row = sorted(fragments[i:j], key=_COL) if j - i > 1 else fragments[i:j]
        i = j
        line = ""
        for fragment in row:
            if fragment.col < len(line):  # overlaps what is printed already: poppler starts a new line
                lines.append(line)
                line = ""
            if previous is not None and not line:
                gap = int((fragment.base - previous.base) / previous.size)
                lines.extend([""] * min(max(gap - 1, 0), MAX_BLANK_LINES))
            line += " " * (fragment.col - len(line)) + fragment.text
            previous = fragment
        lines.append(line)
    return "\n".join(lines) + "\n"


# Regions (invoice2data ``area`` fields) --------------------------------------------------------------


class AreaReader:
    """An invoice2data input module over our words, for template fields with an ``area``: invoice2data would
    run ``pdftotext -bbox-layout`` on a file for them. The rectangle is given in pixels at ``r`` dpi
    (pdftotext's ``-x -y -W -H -r``); the words inside it are grouped into lines, joined by spaces."""

    SUPPORTS_AREA = True

    def __init__(self, data: bytes, max_pages: int = MAX_PAGES) -> None:
        self._data: bytes | None = data
        self._max_pages = max_pages
        self._pages: dict[int, list[Word]] = {}

    def _words(self, page: int) -> list[Word]:
        last = _last_words
        if last is not None and last[0] is self._data and page in last[1]:
            return last[1][page]
        if page not in self._pages:
            words: list[Word] = []
            if self._data is not None and 1 <= page <= self._max_pages:
                try:
                    document = open_pdf(self._data)
                    try:
                        if page <= len(document):
                            words = read_page(document, page - 1)[1]
                    finally:
                        document.close()
                except (PdfUnreadable, pypdfium2.PdfiumError):
                    words = []
            self._pages[page] = words
        return self._pages[page]

    def to_text(self, path: str, area_details: dict[str, Any] | None = None) -> str:
        if area_details is None:  # invoice2data only asks us for areas; the whole text is already read
            return ""
        scale = 72.0 / float(area_details["r"])
        x0, y0 = float(area_details["x"]) * scale, float(area_details["y"]) * scale
        x1, y1 = x0 + float(area_details["W"]) * scale, y0 + float(area_details["H"]) * scale
        lines: list[str] = []
        for page in range(int(area_details["f"]), int(area_details["l"]) + 1):
            inside = [w for w in self._words(page) if w.left < x1 and w.right > x0 and w.top < y1 and w.bottom > y0]
            inside.sort(key=lambda w: (w.top, w.left))
            row: list[Word] = []
            for word in inside:
                if row and abs(word.top - row[0].top) > 3.0:  # pdftotext -bbox words: 3 pt apart, another line
                    lines.append(" ".join(w.text for w in sorted(row, key=lambda w: w.left)))
                    row = []
                row.append(word)
            if row:
                lines.append(" ".join(w.text for w in sorted(row, key=lambda w: w.left)))
        return "\n".join(lines)

    def close(self) -> None:
        self._data, self._pages = None, {}


# poppler -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _pdftotext() -> str | None:
    return shutil.which("pdftotext")


def pdftotext_layout(data: bytes, max_pages: int = MAX_PAGES) -> str | None:
    """``pdftotext -layout`` on ``data`` (through stdin: no temporary file); None when it is not possible."""
    text = pdftotext_pages(data, max_pages)
    return None if text is None else text.replace("\f", "\n")


def pdftotext_pages(data: bytes, max_pages: int = MAX_PAGES) -> str | None:
    """``pdftotext -layout``'s output as it prints it: a form feed after each page; None when it is not possible."""
    binary = _pdftotext()
    if binary is None:
        return None
    try:
        proc = subprocess.run(
            [binary, "-layout", "-enc", "UTF-8", "-l", str(max_pages), "-q", "-", "-"],
            input=data,
            capture_output=True,
            timeout=PDFTOTEXT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("pdftotext failed: %s", type(exc).__name__)
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", errors="replace")
