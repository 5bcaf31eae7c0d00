"""Vietnamese-aware text normalisation for matching keywords in press, camera and cyber text.

Two comparison forms, both lowercase with whitespace collapsed to single spaces:

* `fold(text)`: diacritics removed to ASCII base letters, `đ`/`Đ` (U+0111/U+0110) and the
  look-alikes `Ð`/`ð` (U+00D0/U+00F0, the Icelandic eth often typed for Đ) and `Ɖ`/`ɖ` become
  `d`. Old and new tone placement ("hoà"/"hòa", "thuỷ"/"thủy") fold to the same text.
* `normalize(text)`: diacritics kept; NFC; the eth look-alikes become `đ`; the tone mark of
  `oa`, `oe`, `uy` moved to the modern ("new style") place, on the second vowel
  ("hòa" -> "hoà", "thủy" -> "thuỷ", "khỏe" -> "khoẻ"), and tone marks typed before a
  circumflex or breve put after it, so the same word typed either way compares equal.

Both accept NFC, NFD or mixed input, drop zero-width characters and soft hyphens, and turn
typographic quotes, dashes, ellipses and Unicode spaces into their ASCII forms, so that
"TT–Huế" and "TT-Huế" compare equal.

>>> fold("Thủy điện XẢ LŨ, Ðà Nẵng")
'thuy dien xa lu, da nang'
>>> fold("hoà") == fold("hòa") == "hoa"
True
>>> normalize("Hòa  bình, THỦY triều")
'hoà bình, thuỷ triều'
>>> normalize("lũ") == normalize("lu")
False
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "normalize"]

# Combining marks (the diacritics left over after NFD), deleted when folding.
_COMBINING = (
    *range(0x0300, 0x0370), *range(0x1AB0, 0x1B00), *range(0x1DC0, 0x1E00),
    *range(0x20D0, 0x2100), *range(0xFE20, 0xFE30),
)
_D_LIKE = "\u0110\u0111\u00d0\u00f0\u0189\u0256"  # Đ đ Ð ð Ɖ ɖ
# Characters both forms rewrite: invisible ones out, typographic punctuation and Unicode
# spaces to ASCII (so "TT–Huế" is "TT-Huế" and a no-break space separates words).
_COMMON: dict[str, str] = {
    **dict.fromkeys("\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff", ""),
    **dict.fromkeys("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                    "\u2028\u2029\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...",
}
_FOLD_SPECIAL: dict[str, str] = {**_COMMON, **dict.fromkeys(_D_LIKE, "d")}
_NORMALIZE_SPECIAL: dict[str, str] = {**_COMMON, **dict.fromkeys(_D_LIKE, "\u0111")}
_FOLD_TABLE: dict[int, str | None] = {
    **{ord(ch): out for ch, out in _FOLD_SPECIAL.items()}, **dict.fromkeys(_COMBINING),
}
_SPECIAL_RE = re.compile(f"[{''.join(_FOLD_SPECIAL)}]")
# After NFD, text whose only non-ASCII characters are combining marks U+0300-036F and the
# specials needs no per-character table: replace the specials present, and encoding to
# ASCII drops the marks at C speed. Anything else (other scripts, other mark blocks) takes
# the table, with the same result.
_NOT_ASCII_OR_MARK = re.compile("[^\x00-\x7f\u0300-\u036f]")

_TONES = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng
# A tone typed before the vowel's circumflex/breve (NFD keeps marks of equal class in
# typing order, so "e" + acute + circumflex never composes to "ế"): put the shape first.
_TONE_BEFORE_SHAPE = re.compile(f"([{_TONES[:4]}])([\u0302\u0306])")
# Old-style placement on the first vowel of oa/oe/uy: move it to the second (new style).
_OLD_STYLE_TONE = re.compile(f"([ou])([{_TONES}])((?<=o.)[ae]|(?<=u.)y)(?![\u0300-\u036f])")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _replace_specials(text: str, mapping: dict[str, str]) -> str:
    # A few str.replace calls for the specials present beat a per-character translate.
    for char in set(_SPECIAL_RE.findall(text)):
        text = text.replace(char, mapping[char])
    return text


def fold(text: str) -> str:
    """Lowercase ASCII-base form: no diacritics, đ -> d, single spaces.

    >>> fold("  Thừa Thiên\u00a0-\u00a0HUẾ ")
    'thua thien - hue'
    >>> fold("xa\u0309 lu\u0303")          # NFD input
    'xa lu'
    """
    if text.isascii():
        return _collapse(text.lower())
    decomposed = unicodedata.normalize("NFD", text)
    odd = set(_NOT_ASCII_OR_MARK.findall(decomposed))
    if odd.issubset(_FOLD_SPECIAL):
        for char in odd:
            decomposed = decomposed.replace(char, _FOLD_SPECIAL[char])
        return _collapse(decomposed.encode("ascii", "ignore").decode("ascii").lower())
    return _collapse(decomposed.translate(_FOLD_TABLE).lower())


def normalize(text: str) -> str:
    """Lowercase NFC form that keeps diacritics, with modern tone placement and single spaces.

    >>> normalize("THUỶ") == normalize("thủy") == "thuỷ"
    True
    >>> normalize("Ðà Nẵng")              # U+00D0 typed for Đ
    'đà nẵng'
    """
    if text.isascii():
        return _collapse(text.lower())
    decomposed = _replace_specials(unicodedata.normalize("NFD", text), _NORMALIZE_SPECIAL).lower()
    decomposed = _TONE_BEFORE_SHAPE.sub(r"\2\1", decomposed)
    decomposed = _OLD_STYLE_TONE.sub(r"\1\3\2", decomposed)
    return _collapse(unicodedata.normalize("NFC", decomposed))
