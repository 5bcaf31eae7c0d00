"""Vietnamese-aware text normalisation (ioc.text): fold and normalize."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.text import fold, normalize

# Every Vietnamese letter with every diacritic, upper and lower case.
VIETNAMESE = (
    "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"
)
ALPHABET = VIETNAMESE + VIETNAMESE.upper() + "Ð ð Ɖ"


# -- fold -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Thừa Thiên Huế", "thua thien hue"),
    ("THỪA THIÊN - HUẾ", "thua thien - hue"),
    ("TT–Huế", "tt-hue"),                      # en dash typed for the hyphen
    ("Xả lũ, vỡ đập, ngập", "xa lu, vo dap, ngap"),
    ("Đà Nẵng", "da nang"),                   # U+0110
    ("Ðà Nẵng", "da nang"),                   # U+00D0, the eth typed for Đ
    ("ðập", "dap"),
    ("  cố\t\tđô \n ", "co do"),
    ("Huế\u00a0\u2009city", "hue city"),      # no-break and thin spaces
    ("xả\u200blũ", "xalu"),                   # zero-width space is invisible, not a space
    ("“Huế” … ‘cố đô’", '"hue" ... \'co do\''),
    ("UNION SELECT", "union select"),
    ("", ""),
    ("漢字 Huế", "漢字 hue"),                   # other scripts are kept
    ("Ἀθῆναι Huế", "αθηναι hue"),             # other scripts' marks go too
])
def test_fold_examples(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(("old", "new"), [("hòa", "hoà"), ("thủy", "thuỷ"), ("khỏe", "khoẻ"), ("họa", "hoạ")])
def test_fold_equates_old_and_new_tone_placement(old: str, new: str) -> None:
    assert fold(old) == fold(new) == fold(old.upper())


def test_fold_maps_every_vietnamese_letter_to_ascii() -> None:
    folded = fold(VIETNAMESE + VIETNAMESE.upper())
    assert folded.isascii() and folded.isalpha()
    assert set(folded) == set("aeiouyd")


def test_fold_handles_nfd_and_mixed_input() -> None:
    text = "Thủy điện Bình Điền xả lũ"
    assert fold(unicodedata.normalize("NFD", text)) == fold(text) == "thuy dien binh dien xa lu"
    assert fold("xa\u0309 lũ") == "xa lu"


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list(ALPHABET + " ,.-–“”\u00a0\u200bAbc")), max_size=60))
def test_fold_is_stable_under_forms_and_case(text: str) -> None:
    folded = fold(text)
    assert fold(unicodedata.normalize("NFD", text)) == folded
    assert fold(unicodedata.normalize("NFC", text)) == folded
    assert fold(text.upper()) == folded
    assert fold(folded) == folded
    assert fold(normalize(text)) == folded
    assert folded.isascii()
    assert "  " not in folded and folded == folded.strip()


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_fold_of_any_text(text: str) -> None:
    folded = fold(text)
    assert fold(unicodedata.normalize("NFD", text)) == folded
    assert fold(unicodedata.normalize("NFC", text)) == fold(unicodedata.normalize("NFD", text))
    assert not any(0x300 <= ord(ch) < 0x370 for ch in folded)
    assert "  " not in folded and folded == folded.strip()
    assert folded == " ".join(folded.split())


def _slow_fold(text: str) -> str:
    """The definition, one character at a time: marks out, đ-like to d, typography to ASCII."""
    specials = {"đ": "d", "Đ": "d", "Ð": "d", "ð": "d", "Ɖ": "d", "ɖ": "d", "–": "-", "—": "-", "“": '"',
                "”": '"', "‘": "'", "’": "'", "…": "...", "\u200b": "", "\u00ad": "", "\ufeff": ""}
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if 0x300 <= ord(ch) < 0x370:
            continue
        out.append(specials.get(ch, ch))
    return " ".join("".join(out).lower().split())


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list(ALPHABET + " –—“”‘’…\u200b\u00ad\ufeff\u00a0漢zZ")), max_size=60))
def test_fast_and_table_paths_agree_with_the_definition(text: str) -> None:
    assert fold(text) == _slow_fold(text)
    # A character of another script sends the text down the table path: same result.
    assert fold(text + " 漢") == (_slow_fold(text) + " 漢").strip()


# -- normalize ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Hòa Bình", "hoà bình"),                 # old tone placement -> new
    ("HOÀ BÌNH", "hoà bình"),
    ("Thủy triều", "thuỷ triều"),
    ("khỏe mạnh", "khoẻ mạnh"),
    ("họa sĩ", "hoạ sĩ"),
    ("qùy", "quỳ"),
    ("hoàn toàn", "hoàn toàn"),               # a final consonant: tone on the second vowel already
    ("ngòai", "ngoài"),                       # misplaced tone put where it belongs
    ("khuỷu tay", "khuỷu tay"),
    ("thuở", "thuở"),
    ("Ðà Nẵng", "đà nẵng"),
    ("ĐÀ NẴNG", "đà nẵng"),
    ("e\u0301\u0302", "ế"),                    # acute typed before the circumflex
    ("TT–Huế", "tt-huế"),
    ("  Xả \u00a0 lũ ", "xả lũ"),
    ("plain ASCII  text", "plain ascii text"),
])
def test_normalize_examples(text: str, expected: str) -> None:
    assert normalize(text) == expected
    assert unicodedata.is_normalized("NFC", normalize(text))


def test_normalize_keeps_diacritics_apart() -> None:
    assert normalize("lũ") != normalize("lu")
    assert normalize("đập") != normalize("dap")
    assert normalize("Lũ") == normalize(unicodedata.normalize("NFD", "lũ")) == "lũ"


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list(ALPHABET + " ,.-–\u00a0")), max_size=60))
def test_normalize_is_stable_under_forms_case_and_tone_placement(text: str) -> None:
    normal = normalize(text)
    assert normalize(unicodedata.normalize("NFD", text)) == normal
    assert normalize(text.upper()) == normal
    assert normalize(normal) == normal
    assert unicodedata.is_normalized("NFC", normal)
    assert "  " not in normal and normal == normal.strip()


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_normalize_of_any_text_is_idempotent(text: str) -> None:
    normal = normalize(text)
    assert normalize(normal) == normal
    assert fold(normal) == fold(text)
