"""Text out of images and scanned PDF pages with Tesseract (the Debian ``tesseract-ocr`` binary).

Why the binary through ``subprocess`` rather than a binding: a hung or crashing OCR dies alone and is
bounded by ``OCR_TIMEOUT``; pytesseract would do the same with temporary files. The image goes in through
stdin (PNG) and the words come back on stdout as TSV: no temporary file to clean up.

Photos and scans are not flat and upright, so each image is first
- turned as its EXIF orientation says (phones store the photo sideways and a tag saying so);
- straightened when it is tilted by a few degrees (``estimate_skew``: the angle at which the rows of ink
  line up best, a projection profile on a small copy, ~0.1 s);
- and, when the reading is poor (few words, low confidence), turned by 90/180/270 degrees as Tesseract's
  orientation detection (``--psm 0``, the ``osd`` data) says, then read again. OSD costs 0.4-1 s, so a page
  that reads well never pays it.

Tesseract returns each word with its box and confidence; the words are laid out with ``text.layout_page``
(the rules that lay out a text PDF), so the extractor reads OCR text in the same form as a text PDF's, and
the words' confidences lower the confidence of the fields read from them (``field_confidence``).

Limits, because every input here comes from a stranger:

- ``MAX_PIXELS`` per image (Pillow's own decompression-bomb guard is set to the same number): a 20,000 x
  20,000 PNG of a few KB must be refused before it is decoded, not after it has taken 1.2 GB.
- ``OCR_MAX_PAGES`` scanned pages per PDF (or frames of a TIFF), rendered at ``OCR_DPI`` (300 dpi, what
  Tesseract is tuned for), the scale lowered for oversized pages so that a page never exceeds ``MAX_PIXELS``.
- ``OCR_TIMEOUT`` seconds per page, all Tesseract runs of the page together.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import time
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median
from typing import Any

from PIL import Image, ImageChops, ImageOps

from core.extraction.text import Word, layout_page

logger = logging.getLogger(__name__)

try:  # HEIC/HEIF photos (iPhones): pillow-heif registers itself as a Pillow format
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a declared dependency; without it HEIC is refused as undecodable
    logger.info("pillow-heif is not installed: HEIC images cannot be read")

# Each page is read in English first, then again in its own language (French, German, Spanish, Italian or
# Dutch: the six) when its words say it is another (``guess_language``). Reading with several models
# at once ("fra+eng+deu") costs 2.5 times as much (measured: 1.96 s of CPU against 0.77 s on rwd17) for a
# page in one language.
OCR_LANGUAGES = ("eng", "fra", "deu", "spa", "ita", "nld")
# Short, frequent words that tell the languages apart on an invoice (accents folded: the English model
# reads "à" as "a"). A word common to two languages ("de", "la", "iva") counts for both: the words only one
# of them has decide.
_FUNCTION_WORDS = {
    language: frozenset(words.split())
    for language, words in {
        "eng": "the and of to for with from invoice amount due bill please thank your you our is are this total",
        "fra": "de la le les du des et au aux pour par sur une un est facture montant tva ttc ht votre nous vous "
               "echeance reglement adresse",
        "deu": "der die das und mit fur von zu den dem des ist rechnung betrag mwst ust datum bitte zahlbar summe "
               "ihre wir sie netto brutto",
        "spa": "el los las del con para por una factura importe iva fecha vencimiento cliente numero pago forma "
               "cantidad descripcion precio domicilio condicion",
        "ita": "il di della delle dei per con fattura importo totale imponibile iva data scadenza cliente numero "
               "pagamento partita codice fiscale quantita descrizione prezzo",
        "nld": "de het van en een voor met op te factuur factuurnummer factuurdatum bedrag btw totaal datum "
               "vervaldatum klant betaling uw wij graag omschrijving aantal prijs subtotaal",
    }.items()
}
OCR_DPI = 300
OCR_MAX_PAGES = 3  # an invoice's fields are on its first pages; each page costs ~1-2 s
OCR_TIMEOUT = 60  # seconds per page: well under the extraction job's timeout
MAX_PIXELS = 50_000_000  # ~ an A3 page at 400 dpi; 4 bytes a pixel once decoded = 200 MB at most
OCR_CONFIDENCE = 0.75  # factor applied to the extractor's confidence on OCR text (a 0 may be an O, a 1 an l)
OCR_MAX_IMAGES = 6  # pictures OCRed in a PDF that has a text layer (each costs up to a page's time)

# A page whose words Tesseract is less sure of than this (mean, 0..1), or with fewer words, may be sideways:
# measured (bench/ocr.py), upright corpus pages read at 0.55-0.92 (0.40 for the Chinese rwd22, no model),
# rwd20 turned 90 or 180 degrees at 0.38-0.40 (0.92 once turned back). Below it, OSD is asked.
WEAK_CONFIDENCE = 0.5
WEAK_WORDS = 15
# Fewer words than this and the page is blank or noise, not sideways (a page turned 90 degrees still gives
# Tesseract ~100 words, garbled): OSD is not asked, it would take seconds to find nothing.
MIN_WORDS_TO_TURN = 5
MIN_OSD_CONFIDENCE = 1.5  # Tesseract's orientation confidence below which its answer is a guess
MAX_SKEW = 8.0  # degrees: beyond, a photo is not "tilted", and the projection profile stops being reliable
MIN_SKEW = 0.4  # degrees: below, Tesseract copes, and turning the image would only blur it
# Photos and screenshots come at any size: Tesseract reads best when the text is ~20-30 pixels high. A page
# whose long side is shorter than MIN_LONG_SIDE is enlarged (at most MAX_ENLARGE times; measured on the corpus'
# 800-1100 pixel photos, mean word confidence 0.50 -> 0.80 and 0.63 -> 0.90), and one longer than
# MAX_LONG_SIDE (a 12-megapixel phone photo, a scan of a large page) reduced to an A4 page at ~250 dpi: time
# grows with the pixels (rwd15, a 10.6 x 13.9 inch scan: 2.4 s of CPU at 300 dpi, ~1.7 s and better read at
# this size).
MIN_LONG_SIDE = 1600
MAX_ENLARGE = 2.0
MAX_LONG_SIDE = 3000
# Word confidences at or above this do not lower a field's confidence; below, in proportion.
TRUSTED_WORD_CONFIDENCE = 0.9

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above this and raises above twice this
# Tesseract's OpenMP threads fight each other (and the other jobs) on small machines: measured on 2 cores,
# one A4 page at 300 dpi takes 6.1 s with the default threads and 1.7 s with one.
_TESSERACT_ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}


class OcrUnavailable(Exception):
    """Tesseract is not installed (or failed): the document goes to review without fields."""


class ImageRefused(Exception):
    """The image cannot or must not be decoded (damaged, unknown format, too many pixels)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class OcrWord:
    text: str
    confidence: float  # Tesseract's, 0..1


@dataclass(frozen=True)
class OcrPage:
    """One image read: its words laid out as text, and how it was turned to be read."""

    text: str
    words: tuple[OcrWord, ...] = ()
    rotated: int = 0  # degrees clockwise applied (EXIF orientation not included)
    skew: float = 0.0  # degrees the image was straightened by
    language: str = OCR_LANGUAGES[0]  # the Tesseract model whose reading was kept

    @property
    def confidence(self) -> float:
        return mean_confidence(self.words)


@dataclass(frozen=True)
class OcrText:
    text: str
    pages: int  # pages (or frames) OCRed
    words: tuple[OcrWord, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def confidence(self) -> float:
        return mean_confidence(self.words)


def mean_confidence(words: tuple[OcrWord, ...] | list[OcrWord]) -> float:
    """The mean confidence of ``words`` (0 when there are none)."""
    return sum(w.confidence for w in words) / len(words) if words else 0.0


@lru_cache(maxsize=1)
def tesseract_binary() -> str | None:
    return shutil.which("tesseract")


# Decoding ------------------------------------------------------------------------------------------


def _checked(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageRefused(f"the image has too many pixels to be read safely ({width} x {height})")
    return image


def image_frames(data: bytes, max_frames: int = OCR_MAX_PAGES) -> Iterator[Image.Image]:
    """The first ``max_frames`` frames of ``data`` (a multi-page TIFF has several), each checked against
    ``MAX_PIXELS`` before its pixels are decoded and turned upright as its EXIF orientation says.
    Raises ``ImageRefused``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            for index in range(min(getattr(image, "n_frames", 1), max_frames)):
                if index:
                    image.seek(index)
                _checked(image)
                image.load()
                # exif_transpose returns a copy when it turns the frame; otherwise the frame itself, which the
                # next seek() would overwrite: copy it then.
                upright = ImageOps.exif_transpose(image)
                yield upright if upright is not image else image.copy()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused("the image has too many pixels to be read safely") from exc
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError... on damaged files
        raise ImageRefused(f"the image cannot be decoded ({type(exc).__name__})") from exc


def frame_count(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(getattr(image, "n_frames", 1))
    except Exception:  # decoding errors are reported by image_frames
        return 1


def open_image(data: bytes) -> Image.Image:
    """The first frame of ``data``, checked against ``MAX_PIXELS`` before its pixels are decoded, upright."""
    frames = image_frames(data, 1)
    try:
        return next(frames)
    except StopIteration:  # pragma: no cover - Pillow always has one frame
        raise ImageRefused("the image has no frame") from None
    finally:
        frames.close()


# Straightening ---------------------------------------------------------------------------------------


def _grayscale(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))  # transparent = paper, not ink
        background.alpha_composite(image.convert("RGBA"))
        image = background
    if image.mode == "L":
        return image
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    # The darkest channel, not the luminance: text printed in a light brand colour (a tan "SHIPPING INVOICE
    # 10112", luminance ~165) turns white when Tesseract binarises a page of black text, and is lost; its
    # darkest channel (~110) keeps it ink. Grey and black text read the same either way.
    red, green, blue = image.split()[:3]
    return ImageChops.darker(ImageChops.darker(red, green), blue)


def _scaled(gray: Image.Image) -> Image.Image:
    """``gray`` at a size Tesseract reads well (see ``MIN_LONG_SIDE``); itself when it is one already."""
    long_side = max(gray.size)
    if long_side < MIN_LONG_SIDE:
        factor = min(MIN_LONG_SIDE / long_side, MAX_ENLARGE)
    elif long_side > MAX_LONG_SIDE:
        factor = MAX_LONG_SIDE / long_side
    else:
        return gray
    size = (max(1, round(gray.width * factor)), max(1, round(gray.height * factor)))
    return gray.resize(size, Image.Resampling.LANCZOS)


def _profile_score(ink: Image.Image, angle: float) -> float:
    """How sharply the rows of ``ink`` (white on black) alternate between text and gaps once turned by
    ``angle``: the sum of squared differences between successive rows' ink."""
    turned = ink.rotate(angle, resample=Image.Resampling.NEAREST) if angle else ink
    rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()  # mode L: a byte a row
    return float(sum((a - b) ** 2 for a, b in zip(rows, rows[1:], strict=False)))


def estimate_skew(gray: Image.Image) -> float:
    """The angle (degrees, counter-clockwise as ``Image.rotate`` takes it) that levels the text lines of
    ``gray``; 0 when no angle within ``MAX_SKEW`` is clearly better. Coarse steps of 1 degree, then 0.25."""
    small = gray.copy()
    small.thumbnail((900, 900))
    small = ImageOps.autocontrast(small, cutoff=1)
    ink = small.point([255 if v < 128 else 0 for v in range(256)])  # ink white, paper black
    if not ink.getbbox():
        return 0.0
    scores = {0.0: _profile_score(ink, 0.0)}
    for step in range(1, int(MAX_SKEW) + 1):
        for angle in (float(step), -float(step)):
            scores[angle] = _profile_score(ink, angle)
    best = max(scores, key=scores.__getitem__)
    for angle in (best - 0.5, best - 0.25, best + 0.25, best + 0.5):
        if abs(angle) <= MAX_SKEW and angle not in scores:
            scores[angle] = _profile_score(ink, angle)
    best = max(scores, key=scores.__getitem__)
    if abs(best) < MIN_SKEW or scores[best] < scores[0.0] * 1.05:  # noise, not a tilt
        return 0.0
    return best


# Tesseract -------------------------------------------------------------------------------------------


def _run(args: list[str], image: Image.Image, timeout: float) -> subprocess.CompletedProcess[bytes]:
    binary = tesseract_binary()
    if binary is None:
        raise OcrUnavailable("tesseract is not installed")
    if timeout <= 0:
        raise OcrUnavailable(f"OCR took longer than {OCR_TIMEOUT:.0f} s")
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=1)  # fast: the bytes only cross a pipe
    try:
        return subprocess.run(
            [binary, "stdin", "stdout", *args],
            input=png.getvalue(),
            capture_output=True,
            timeout=timeout,
            env=_TESSERACT_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrUnavailable(f"OCR took longer than {OCR_TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise OcrUnavailable(f"tesseract could not run ({type(exc).__name__})") from exc


def _read_words(image: Image.Image, timeout: float, language: str) -> tuple[str, list[OcrWord], float]:
    """Tesseract's words of ``image`` with their boxes (TSV), laid out by ``layout_page``."""
    proc = _run(["-l", language, "--psm", "3", "--dpi", str(OCR_DPI), "tsv"], image, timeout)
    if proc.returncode != 0:
        # stderr names the problem (missing language data...), never the document's text.
        raise OcrUnavailable(f"tesseract failed: {proc.stderr.decode(errors='replace')[-200:].strip()}")
    return words_layout(proc.stdout.decode("utf-8", errors="replace"))


def words_layout(tsv: str) -> tuple[str, list[OcrWord], float]:
    """Tesseract's TSV (``level page block par line word left top width height conf text``) as layout text,
    the words with their confidences, and the share of words of 3 characters or more whose box is taller
    than wide: Tesseract reads a page turned by 90 degrees as vertical lines, confidently, so a page whose
    words stand upright is read sideways.

    Words of one Tesseract line share its baseline (a line still slightly tilted stays one line), and their
    size is the median height of its words' boxes over 1.3 (ascenders and descenders), so that
    ``layout_page`` measures gaps and columns in font sizes as it does for a PDF.
    """
    lines: dict[tuple[str, ...], list[list[str]]] = {}
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) != 12 or cells[0] != "5" or not cells[11].strip():
            continue
        lines.setdefault(tuple(cells[1:5]), []).append(cells)
    words: list[Word] = []
    read: list[OcrWord] = []
    long_words = tall = 0
    for cells_of_line in lines.values():
        boxes = [(int(c[6]), int(c[7]), int(c[8]), int(c[9])) for c in cells_of_line]
        bottom = max(b[1] + b[3] for b in boxes)
        heights = sorted(b[3] for b in boxes)
        size = max(heights[len(heights) // 2] / 1.3, 1.0) if heights else 1.0
        for cells, (left, word_top, width, height) in zip(cells_of_line, boxes, strict=True):
            text = _digits_restored(cells[11].strip())
            words.append(Word(float(left), float(word_top), float(left + width), float(word_top + height),
                              float(bottom), size, text, left + width / max(len(text), 1)))
            try:
                confidence = max(0.0, min(1.0, float(cells[10]) / 100))
            except ValueError:
                confidence = 0.0
            read.append(OcrWord(text, confidence))
            if len(text) >= 3:
                long_words += 1
                tall += height > width
    text = _rules_as_gaps(_CJK_GAP.sub("", layout_page(words)))
    return text, read, tall / long_words if long_words else 0.0


def _rules_as_gaps(text: str) -> str:
    """A table's rules, read by Tesseract as "|", "[" or "]" between or glued to words ("Facture | Date de
    Facture |", "|ooszo0s01351]"), turned into the gap that separates cells in a text PDF's layout (as wide,
    at least two spaces): the extractor then reads the cells as it reads a text PDF's columns."""
    return _RULE.sub(lambda m: " " * max(len(m.group()), 2), text)


_RULE = re.compile(r" *[|¦\[\]]+ *")


def _digits_restored(word: str) -> str:
    """A number with one digit read as the letter it looks like ("i979", "!979", "2O23," -> "1979", "2023,"):
    words of three digits or more and that one letter only, so that a date or an amount can be read."""
    core = word.rstrip(".,;:")
    odd = [ch for ch in core if not ch.isdigit()]
    if len(core) < 4 or len(odd) != 1 or odd[0] not in _DIGIT_LOOKALIKES:
        return word
    return core.replace(odd[0], _DIGIT_LOOKALIKES[odd[0]]) + word[len(core):]


_DIGIT_LOOKALIKES = {"i": "1", "I": "1", "l": "1", "!": "1", "|": "1", "O": "0", "o": "0"}


# Tesseract makes a word of each ideograph or two; the layout puts a space between words, which would split
# "发票号码" into "发票 号码" and no label would match. One space between two CJK characters is not a gap.
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(f"(?<=[{_CJK}]) (?=[{_CJK}])")


def detect_orientation(image: Image.Image, timeout: float) -> tuple[int, str | None]:
    """Tesseract's orientation detection (``--psm 0``): degrees clockwise that make ``image`` upright (0 when
    unsure) and the script it is written in ("Latin", "Han", ...; None when none was told)."""
    proc = _run(["--psm", "0", "-l", "osd", "--dpi", str(OCR_DPI)], image, timeout)
    if proc.returncode != 0:  # "Too few characters": nothing to turn
        return 0, None
    out = proc.stdout.decode("utf-8", errors="replace")
    rotate = re.search(r"Rotate:\s*(\d+)", out)
    confidence = re.search(r"Orientation confidence:\s*([\d.]+)", out)
    script = re.search(r"Script:\s*(\w+)", out)
    found_script = script.group(1) if script else None
    if rotate is None or confidence is None or float(confidence.group(1)) < MIN_OSD_CONFIDENCE:
        return 0, found_script
    return int(rotate.group(1)) % 360, found_script


# Scripts the Latin models cannot read at all, and the Tesseract data that reads each (each reads digits and
# Latin codes too; "+eng" took 1.6 times as long on rwd22 and misread its date). A script whose data is not
# installed is read as before.
SCRIPT_LANGUAGES = {
    "Han": "chi_sim",
    "HanS": "chi_sim",
    "HanT": "chi_tra",
    "Japanese": "jpn",
    "Hangul": "kor",
    "Korean": "kor",
    "Arabic": "ara",
    "Cyrillic": "rus",
    "Greek": "ell",
}
# Ideographs have many strokes: a page of them is read at this long side at least (rwd22, 1694 pixels wide:
# the date "2018年03月23日" read as "20184603 A238" as it is, right at 1.5 times).
SCRIPT_LONG_SIDE = 2500


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """The Tesseract language data installed (``--list-langs``); empty when Tesseract cannot tell."""
    binary = tesseract_binary()
    if binary is None:
        return frozenset()
    try:
        proc = subprocess.run([binary, "--list-langs"], capture_output=True, timeout=10, env=_TESSERACT_ENV,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.strip() for line in proc.stdout.decode(errors="replace").splitlines()[1:] if line.strip())


def script_language(script: str | None) -> str | None:
    """The Tesseract languages that read ``script`` (OSD's name) when it is not Latin and its data is
    installed; None otherwise (the Latin models' reading stands)."""
    language = SCRIPT_LANGUAGES.get(script or "")
    if language is None or not set(language.split("+")) <= installed_languages():
        return None
    return language


def guess_language(words: list[OcrWord]) -> str:
    """The language of ``OCR_LANGUAGES`` whose function words are the most frequent in ``words`` (English
    when none is ahead)."""
    counts = dict.fromkeys(OCR_LANGUAGES, 0)
    for word in words:
        folded = "".join(c for c in unicodedata.normalize("NFKD", word.text.casefold()) if c.isalpha() and c.isascii())
        for language, known in _FUNCTION_WORDS.items():
            counts[language] += folded in known
    best = max(OCR_LANGUAGES, key=lambda language: counts[language])
    return best if counts[best] > counts[OCR_LANGUAGES[0]] else OCR_LANGUAGES[0]


def _read_in_its_language(image: Image.Image, deadline: float) -> tuple[str, list[OcrWord], float, str]:
    """``image`` read in English, then in its own language when that is another and reads better; the
    reading kept and its language."""
    text, words, sideways = _read_words(image, deadline - time.monotonic(), OCR_LANGUAGES[0])
    language = guess_language(words)
    if language == OCR_LANGUAGES[0]:
        return text, words, sideways, language
    again = _read_words(image, deadline - time.monotonic(), language)
    if mean_confidence(again[1]) >= mean_confidence(words):
        return (*again, language)
    return text, words, sideways, OCR_LANGUAGES[0]


def _weak(words: list[OcrWord], sideways: float) -> bool:
    return len(words) < WEAK_WORDS or mean_confidence(words) < WEAK_CONFIDENCE or sideways > 0.5


def read_image(image: Image.Image, timeout: float = OCR_TIMEOUT, *, rendered: bool = False, whole_page: bool = True
               ) -> OcrPage:
    """``image`` read by Tesseract, straightened first and turned upright when it reads poorly.

    ``rendered``: a PDF page or picture rendered at ``OCR_DPI`` (its size is right already: not enlarged);
    ``whole_page`` False: a picture cut out of a page (a logo, a stamp: a few words, never sideways), which
    OSD is not asked about. Raises ``OcrUnavailable`` when Tesseract is missing, fails or takes longer than
    ``timeout`` in all."""
    deadline = time.monotonic() + timeout
    gray = _grayscale(image)
    if not rendered or max(gray.size) > MAX_LONG_SIDE:
        gray = _scaled(gray)
    try:
        skew = estimate_skew(gray)
        straight = gray.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255) if skew else gray
        text, words, sideways, language = _read_in_its_language(straight, deadline)
        if not whole_page or not _weak(words, sideways) or len(words) < MIN_WORDS_TO_TURN:
            return OcrPage(text, tuple(words), 0, skew, language)
        rotation, script = detect_orientation(straight, deadline - time.monotonic())
        if (in_script := script_language(script)) is not None:
            return (_read_in_script(straight, rotation, skew, in_script, deadline)
                    or OcrPage(text, tuple(words), 0, skew, language))
        if rotation == 0:
            return OcrPage(text, tuple(words), 0, skew, language)
        turned = straight.rotate(-rotation, expand=True)  # Image.rotate turns counter-clockwise
        turned_skew = estimate_skew(turned)
        if turned_skew:
            turned = turned.rotate(turned_skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
        turned_text, turned_words, turned_sideways, turned_language = _read_in_its_language(turned, deadline)
        if turned_sideways < sideways or (
                mean_confidence(turned_words) * len(turned_words) > mean_confidence(words) * len(words)):
            logger.info("OCR: page turned %d degrees", rotation)
            return OcrPage(turned_text, tuple(turned_words), rotation, turned_skew, turned_language)
        return OcrPage(text, tuple(words), 0, skew, language)
    finally:
        if gray is not image:
            gray.close()


def _read_in_script(image: Image.Image, rotation: int, skew: float, language: str, deadline: float
                    ) -> OcrPage | None:
    """``image`` (turned upright by ``rotation``) read with the data of its own script (a Chinese invoice read
    with the Latin models gives a few garbled Latin words); None when that reads no word."""
    turned = image.rotate(-rotation, expand=True) if rotation else image
    if max(turned.size) < SCRIPT_LONG_SIDE:
        factor = min(SCRIPT_LONG_SIDE / max(turned.size), MAX_ENLARGE)
        turned = turned.resize((round(turned.width * factor), round(turned.height * factor)),
                               Image.Resampling.LANCZOS)
    text, words, _sideways = _read_words(turned, deadline - time.monotonic(), language)
    if not words:
        return None
    logger.info("OCR: page read as %s", language)
    return OcrPage(text, tuple(words), rotation, skew, language)


def ocr_image(image: Image.Image, timeout: float = OCR_TIMEOUT) -> str:
    """Tesseract's text for one image; ``OcrUnavailable`` when Tesseract is missing or fails."""
    return read_image(image, timeout).text


def ocr_image_bytes(data: bytes, max_frames: int = OCR_MAX_PAGES) -> OcrText:
    """The text of an image file (PNG, JPEG, TIFF with its first frames, HEIC...); raises ``ImageRefused``
    or ``OcrUnavailable``."""
    pages: list[OcrPage] = []
    for image in image_frames(data, max_frames):
        try:
            pages.append(read_image(image))
        finally:
            image.close()
    notes: tuple[str, ...] = ()
    frames = frame_count(data)
    if frames > len(pages):
        notes = (f"OCR read the first {len(pages)} of {frames} pages",)
    return _joined(pages, notes)


def _joined(pages: list[OcrPage], notes: tuple[str, ...] = ()) -> OcrText:
    turned = [f"page {n} was turned {p.rotated} degrees to be read" for n, p in enumerate(pages, 1) if p.rotated]
    return OcrText("\n".join(p.text for p in pages), len(pages), tuple(w for p in pages for w in p.words),
                   (*notes, *turned))


def ocr_pdf(document: object, max_pages: int = OCR_MAX_PAGES) -> OcrText:
    """The text of the first ``max_pages`` pages of an open ``pypdfium2.PdfDocument``, rendered at 300 dpi."""
    import pypdfium2

    assert isinstance(document, pypdfium2.PdfDocument)
    pages: list[OcrPage] = []
    count = min(len(document), max_pages)
    for index in range(count):
        page = document[index]
        try:
            pages.append(read_page(page))
        finally:
            page.close()
    return _joined(pages)


def read_page(page: Any) -> OcrPage:
    """An open ``pypdfium2.PdfPage`` rendered at ``OCR_DPI`` and read."""
    width, height = page.get_size()  # in points (1/72 inch)
    return _ocr_rendered(page, width, height)


def ocr_page(page: Any) -> str:
    """The text of an open ``pypdfium2.PdfPage``, rendered at ``OCR_DPI``."""
    return read_page(page).text


def _ocr_rendered(page: Any, width: float, height: float, crop: tuple[float, float, float, float] = (0, 0, 0, 0)
                  ) -> OcrPage:
    """Tesseract's reading of ``page`` (or of what ``crop`` leaves of it: points cut off the left, bottom, right
    and top), ``width`` x ``height`` points rendered at ``OCR_DPI``."""
    scale = min(OCR_DPI / 72, MAX_LONG_SIDE / max(width, height, 1.0))  # never rendered larger than read
    pixels = width * height * scale * scale
    if pixels > MAX_PIXELS:  # a poster-sized page: render it smaller rather than not at all
        scale *= (MAX_PIXELS / pixels) ** 0.5
    bitmap = page.render(scale=scale, crop=crop, grayscale=True)
    image = bitmap.to_pil()
    try:
        return read_image(image, rendered=True, whole_page=crop == (0, 0, 0, 0))
    finally:
        image.close()
        bitmap.close()


# Field confidence ------------------------------------------------------------------------------------


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(c for c in folded if c.isalnum())


def field_confidence(value: object, words: tuple[OcrWord, ...] | list[OcrWord], page: float) -> float:
    """The mean confidence of the OCR words ``value`` was read from (words whose letters and digits hold a
    part of it, or that hold it whole); ``page``, the page's mean, when none can be told."""
    wanted = [_key(part) for part in str(value).split()]
    wanted = [part for part in wanted if len(part) >= 2]
    if not wanted:
        return page
    if isinstance(value, int | float) or re.fullmatch(r"-?[\d.]+", str(value)):  # 1234.50 printed "1 234,50"
        wanted = [_key(str(value))]
    found: list[float] = []
    keys = [(_key(w.text), w.confidence) for w in words]
    for part in wanted:
        matches = [conf for key, conf in keys if len(key) >= 2 and (part in key or (len(key) >= 3 and key in part))]
        if matches:
            found.append(median(matches))
    return sum(found) / len(found) if found else page


def confidence_factor(word_confidence: float) -> float:
    """What OCR words read with ``word_confidence`` (0..1) multiply a field's confidence by."""
    return OCR_CONFIDENCE * min(1.0, word_confidence / TRUSTED_WORD_CONFIDENCE)


# Pictures inside text PDFs -----------------------------------------------------------------------------


def _image_boxes(page: object, min_share: float) -> list[tuple[float, float, float, float]]:
    """The boxes (left, bottom, right, top, in points) of the images covering at least ``min_share`` of a page."""
    from pypdfium2 import raw as pdfium_c

    page_left, page_bottom, page_right, page_top = page.get_cropbox()  # type: ignore[attr-defined]
    area = max((page_right - page_left) * (page_top - page_bottom), 1.0)
    boxes = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_bounds()
        left, bottom = max(left, page_left), max(bottom, page_bottom)
        right, top = min(right, page_right), min(top, page_top)
        if right > left and top > bottom and (right - left) * (top - bottom) / area >= min_share:
            boxes.append((left, bottom, right, top))
    return boxes


def scanned_pages(document: object, max_pages: int = OCR_MAX_PAGES, min_share: float = 0.5) -> int:
    """How many of the first ``max_pages`` pages of an open ``pypdfium2.PdfDocument`` are mostly one picture
    (a scan, whatever text layer it carries)."""
    import pypdfium2

    assert isinstance(document, pypdfium2.PdfDocument)
    count = 0
    for index in range(min(len(document), max_pages)):
        page = document[index]
        try:
            count += is_scan(page, min_share)
        finally:
            page.close()
    return count


def is_scan(page: object, min_share: float = 0.5) -> bool:
    """An open ``pypdfium2.PdfPage`` that is mostly one picture (a scan, whatever text layer it carries)."""
    return bool(_image_boxes(page, min_share))


def ocr_images(document: object, max_pages: int = OCR_MAX_PAGES, min_share: float = 0.03,
               max_images: int = OCR_MAX_IMAGES) -> OcrText:
    """The text of the pictures on the first pages of a PDF that has a text layer (a letterhead or company
    details pasted as an image), top to bottom: each picture's area is rendered at ``OCR_DPI`` and OCRed
    alone. Where the text layer has text it is exact (Tesseract reads "21 %" as "21%", "SCONL0" as
    "SCONLO"), so only what is not in it is OCRed; the caller puts both texts together."""
    import pypdfium2

    assert isinstance(document, pypdfium2.PdfDocument)
    pages: list[OcrPage] = []
    done = 0
    count = min(len(document), max_pages)
    for index in range(count):
        page = document[index]
        try:
            page_left, page_bottom, page_right, page_top = page.get_cropbox()
            boxes = sorted(_image_boxes(page, min_share), key=lambda b: -b[3])  # y goes up: highest first
            if boxes and page.get_rotation():  # crops apply to the turned page: read it whole instead
                boxes = [(page_left, page_bottom, page_right, page_top)]
            for left, bottom, right, top in boxes:
                if done >= max_images:
                    break
                done += 1
                crop = (left - page_left, bottom - page_bottom, page_right - right, page_top - top)
                found = _ocr_rendered(page, right - left, top - bottom, crop)
                if found.text.strip():
                    pages.append(found)
        finally:
            page.close()
    joined = _joined(pages)
    return OcrText(joined.text, count, joined.words, joined.notes)
