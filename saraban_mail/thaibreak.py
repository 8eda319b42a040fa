"""Where a line of Thai may break: Thai writes no space between words, so the PDF report asks
libthai (the word breaker Pango and LibreOffice use) through ctypes.

Without libthai (not installed) a line breaks at spaces, and a word too long for its line
between two characters that are not a vowel or tone mark: never inside a written syllable."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import unicodedata
from collections.abc import Callable


@functools.cache
def _libthai() -> tuple[ctypes.CDLL, int] | None:
    name = ctypes.util.find_library("thai") or "libthai.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.th_brk_new.restype = ctypes.c_void_p
    lib.th_brk_new.argtypes = [ctypes.c_char_p]
    lib.th_brk_find_breaks.restype = ctypes.c_int
    lib.th_brk_find_breaks.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_int), ctypes.c_size_t]
    breaker = lib.th_brk_new(None)  # the dictionary libthai-data installs
    return (lib, breaker) if breaker else None


def available() -> bool:
    return _libthai() is not None


def breaks(text: str) -> list[int]:
    """Positions (indices into text) before which a line may break."""
    found = {i + 1 for i, ch in enumerate(text[:-1]) if ch == " "}
    found |= {i for i, ch in enumerate(text) if i and text[i - 1] in ",)" and ch != " "}
    thai = _libthai()
    if thai is None:
        return sorted(found)
    lib, breaker = thai
    # libthai reads TIS-620, one byte a character, so positions are indices into text.
    data = text.encode("tis-620", errors="replace")
    positions = (ctypes.c_int * (len(text) + 1))()
    count = lib.th_brk_find_breaks(breaker, data, positions, len(text) + 1)
    return sorted(found | {positions[i] for i in range(count) if 0 < positions[i] < len(text)})


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Lines of at most `width` (as `measure` counts it), broken where Thai allows."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_one(paragraph, width, measure))
    return lines


def _wrap_one(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    lines, start = [], 0
    while measure(text[start:].strip()) > width:
        cuts = [b for b in breaks(text) if b > start and measure(text[start:b].strip()) <= width]
        if not cuts:  # one word longer than the line: cut it between written syllables
            cuts = [i for i in range(start + 1, len(text)) if _can_cut(text, i)
                    and measure(text[start:i]) <= width] or [_next_cut(text, start)]
        lines.append(text[start:cuts[-1]].strip())
        start = cuts[-1]
    lines.append(text[start:].strip())
    return lines


def _can_cut(text: str, i: int) -> bool:
    """Not before a combining mark (above/below vowel, tone mark) nor before ะ า ำ."""
    return not (unicodedata.category(text[i]) == "Mn" or text[i] in "ะาำๆ")


def _next_cut(text: str, start: int) -> int:
    return next((i for i in range(start + 1, len(text)) if _can_cut(text, i)), len(text))
