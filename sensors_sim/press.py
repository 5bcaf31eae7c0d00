"""Deterministic simulator of the press stream: Vietnamese articles about Thừa Thiên Huế.

Background traffic: every outlet of `config/reference/press.yaml` publishes articles about
the province, composed from templates and topic vocabularies (tourism, heritage, economy,
traffic, weather, education, culture/festival, administration), at a realistic rate (local
outlets dozens a day, national outlets a few articles about Huế a day) with a day/night
profile, plus two daily disaster-prevention bulletins (topic "phòng chống thiên tai"). Every
article names the province by one of its aliases (Thừa Thiên Huế, Thừa Thiên - Huế, TT-Huế,
TP Huế, Huế, cố đô) and is typed like real crawled text: a share in NFD, a share with the
other tone placement ("hoà", "thuỷ", "khoẻ" for the "hòa", "thủy", "khỏe" of the templates),
a share with Ð (U+00D0) typed for Đ. Sentiment is mostly neutral or positive, a few articles
mildly negative, never at or below -0.5 (that is what the negative-press rules watch), and
no background text carries the flood/dam keywords ("xả lũ", "vỡ đập", "ngập"; "ngập tràn",
brimming, does occur in festival news, as in real life). Over 30 days (three seeds) the
background sets off no rule of rules/press.yaml, also after the 7-day learning of
press.outlet.new_hue (every reference outlet writes about Huế within days).

Incidents (`incident_kinds`), each with the shipped rules of `rules/press.yaml` that catch it:

* `negative_national`: a national outlet publishes a strongly negative article about Huế
  (sentiment <= -0.5), maybe with follow-ups -> `press.hue.negative_national`, key `source_id`.
* `negative_wave`: >= 5 outlets publish the same negative story about Huế within 6 h ->
  `press.story.negative_wide` (and the per-outlet negative rules its articles also set off).
* `flood_coverage`: many outlets report releases and flooding ("xả lũ", "ngập", optionally a
  "vỡ đập" rumour) -> `press.story.flood_wide`. The cross-stream rules
  (`press.flood.kim_long_bd2`, `press.dam.break_kim_long_bd2`) also need the reservoir stream's
  Kim Long gauge at or above BĐ2: pass `kim_long_above_bd2=True` when the scenario floods it.
* `syndicated_story`: one story (text from `sensors_sim/data/press_stories.yaml`) re-published
  by >= 5 outlets within 6 h with small edits (another title, a byline, a sentence left out)
  -> `press.story.syndicated` (near-duplicate text), key `lang` (and the story).
* `topic_spike`: storm/disaster articles far above the trailing week ->
  `press.topic.flood.spike`. That rule (spike, window 1h, baseline 7d, bucket 6 min) judges its
  key only once the key's history covers a whole baseline: the first flood-topic article (the
  first bulletin, at most a day after `start`) must be at least 7 d 54 min before the spike,
  so a topic spike needs a run of about 8 days; `spike_ready_at` is the earliest `at`.

>>> sim = PressSimulator(seed=7, start=1761411600.0)       # 2025-10-26 00:00 +07
>>> incident = sim.add_incident("negative_national", at=1761411600.0 + 9 * 3600, duration=3600,
...                             outlet="vnexpress.net")
>>> incident.rules, incident.keys
(('press.hue.negative_national',), {'source_id': 'vnexpress.net'})
>>> events = list(sim.events(1761411600.0 + 86400))
>>> sorted(events[0])
['body', 'engagement', 'id', 'is_official', 'lang', 'sentiment', 'source_id', 'title', 'topics', 'ts', 'url']
>>> any(e["source_id"] == "vnexpress.net" and e["sentiment"] <= -0.5 for e in events)
True

Randomness: the background comes from `numpy.random.default_rng(seed)`, drawn day by day
(created in `events()`, so two calls give the same list, and a shorter run is a prefix of a
longer one); each incident from `default_rng([seed, n])` when it is added, so adding an
incident never changes the background events.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
import string
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ioc.exceptions import IocError
from ioc.timeutil import format_ts
from sensors_sim.base import Incident

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "HUE_ALIASES",
    "INCIDENT_RULES",
    "SPIKE_HISTORY_S",
    "Outlet",
    "OutletConfigError",
    "PressSimulator",
    "load_outlets",
    "retype",
]

DEFAULT_REFERENCE_PATH = Path(__file__).resolve().parent.parent / "config" / "reference" / "press.yaml"

# docs/domain.md §5: how articles name the province ("Hue" without diacritics is left to the rules'
# tests: the simulated outlets type Vietnamese with diacritics).
HUE_ALIASES: tuple[str, ...] = ("Thừa Thiên Huế", "Thừa Thiên - Huế", "TT-Huế", "TP Huế", "Huế", "cố đô")

# The shipped rules (rules/press.yaml) that catch each incident kind, main rule first. The
# others are rules its articles set off as well, so that their alerts score as true positives:
# a negative wave's per-outlet alerts (its keys are {}: those alerts are keyed by source_id,
# the wide-story alert by lang), a dense flood coverage's topic spike, and the near-duplicate
# story of a flood coverage or topic spike (their articles are composed from few sentences, as
# copies of one official bulletin are).
INCIDENT_RULES: dict[str, tuple[str, ...]] = {
    "negative_national": ("press.hue.negative_national",),
    "negative_wave": ("press.story.negative_wide", "press.hue.negative_national", "press.hue.negative_official"),
    "flood_coverage": ("press.story.flood_wide", "press.topic.flood.spike", "press.story.syndicated"),
    "topic_spike": ("press.topic.flood.spike", "press.story.syndicated"),
    "syndicated_story": ("press.story.syndicated",),
}
# Texts of the syndicated stories (corpora live in data files).
SYNDICATED_PATH = Path(__file__).resolve().parent / "data" / "press_stories.yaml"
_CROSS_STREAM_RULES = ("press.flood.kim_long_bd2",)
_DAM_BREAK_RULE = "press.dam.break_kim_long_bd2"

# press.topic.flood.spike: window 1h + baseline 7d - bucket 6m of history before it judges.
SPIKE_HISTORY_S = 3600.0 + 7 * 86400.0 - 360.0
_SPIKE_MIN_ARTICLES = 6  # its min_count
_STORY_WINDOW_S = 6 * 3600.0  # press.story.*: >= 5 outlets within 6 h
_STORY_OUTLETS = 5

_LOCAL_OFFSET_S = 7 * 3600.0  # Huế is UTC+7, no daylight saving
_DAY_S = 86400.0


class OutletConfigError(IocError, ValueError):
    """The outlet file did not load; `problems` lists every error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} error(s) in the outlet file\n" + "\n".join(problems))


@dataclass(frozen=True)
class Outlet:
    """One press outlet of the reference data (`source_id` is its domain)."""

    source_id: str
    name: str
    national: bool
    official: bool
    reach: float  # rough monthly readers (unverified, reference data)

    @property
    def articles_per_day(self) -> float:
        """Articles about Huế a day: local outlets write dozens, national ones a few (a model:
        grows with the square root of the reach; unverified)."""
        if self.national:
            return 1.5 * math.sqrt(self.reach / 5e6)
        return 12.0 * math.sqrt(self.reach / 5e5)


def load_outlets(path: str | Path = DEFAULT_REFERENCE_PATH) -> list[Outlet]:
    """Outlets of a reference file (`key: source_id`, `items: [...]`), validated.

    >>> [o.source_id for o in load_outlets() if not o.national]
    ['baothuathienhue.vn', 'huengaynay.vn', 'hue.gov.vn', 'trt.com.vn']
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OutletConfigError([f"{path.name}: cannot be read as YAML ({exc})"]) from None
    if not isinstance(data, dict) or data.get("key") != "source_id" or not isinstance(data.get("items"), list):
        raise OutletConfigError([f"{path.name}: expected a mapping with `key: source_id` and `items: [...]`"])
    problems: list[str] = []
    outlets: list[Outlet] = []
    for number, item in enumerate(data["items"], start=1):
        where = f"{path.name}: item {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: not a mapping")
            continue
        sid, name, reach = item.get("source_id"), item.get("outlet_name"), item.get("outlet_reach")
        before = len(problems)
        if not isinstance(sid, str) or not sid.strip():
            problems.append(f"{where}: source_id: {sid!r} is not a non-empty text (the outlet's domain)")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: outlet_name: {name!r} is not a non-empty text")
        for key in ("national", "official"):
            if not isinstance(item.get(key), bool):
                problems.append(f"{where}: {key}: {item.get(key)!r} is not true or false")
        if isinstance(reach, bool) or not isinstance(reach, (int, float)) or not reach > 0:
            problems.append(f"{where}: outlet_reach: {reach!r} is not a positive number")
        if len(problems) == before:
            assert isinstance(sid, str) and isinstance(name, str) and isinstance(reach, (int, float))
            if any(o.source_id == sid.strip() for o in outlets):
                problems.append(f"{where}: source_id: {sid!r} is a duplicate")
                continue
            outlets.append(Outlet(sid.strip(), name, item["national"], item["official"], float(reach)))
    if not problems and not outlets:
        problems.append(f"{path.name}: no outlets")
    if problems:
        raise OutletConfigError(problems)
    return outlets


# --- Text: typing variants -------------------------------------------------------------------

# Tone on the first vowel of an open oa/oe/uy syllable (hòa, khỏe, thủy) -> on the second
# (hoà, khoẻ, thuỷ), NFC text. A syllable that goes on (hoàng, thuyền) has one placement only.
_TONES = ("\u0300", "\u0301", "\u0303", "\u0309", "\u0323")  # huyền, sắc, ngã, hỏi, nặng
_MOVE: dict[str, str] = {}
for _first, _second in (("o", "a"), ("o", "e"), ("u", "y")):
    for _tone in _TONES:
        for _a, _b in ((_first, _second), (_first.upper(), _second), (_first.upper(), _second.upper())):
            _old = unicodedata.normalize("NFC", _a + _tone) + _b
            _MOVE[_old] = _a + unicodedata.normalize("NFC", _b + _tone)
_MOVE_RE = re.compile("(" + "|".join(sorted(_MOVE, key=len, reverse=True)) + r")(?!\w)")


def retype(text: str, *, nfd: bool = False, tone: bool = False, eth: bool = False) -> str:
    """The text as another system would type it: `tone` moves the tone mark of open oa/oe/uy
    syllables to the second vowel ("hòa" -> "hoà"), `eth` types Ð (U+00D0) for Đ, `nfd`
    decomposes. `ioc.text.normalize` gives the same form for every combination.

    >>> retype("Hòa bình, Thủy điện Đại Ninh", tone=True, eth=True)
    'Hoà bình, Thuỷ điện Ðại Ninh'
    >>> len(retype("Huế", nfd=True))
    5
    """
    if tone:
        text = _MOVE_RE.sub(lambda m: _MOVE[m.group(1)], text)
    if eth:
        text = text.replace("Đ", "\u00d0")
    if nfd:
        text = unicodedata.normalize("NFD", text)
    return text


# ASCII slug of a Vietnamese title for urls ("Đại Nội" -> "dai-noi"): NFD, marks dropped.
_SLUG_RE = re.compile(r"[^a-z0-9]+")


def _slug(title: str) -> str:
    ascii_ = unicodedata.normalize("NFD", title.replace("Đ", "D").replace("đ", "d")).encode("ascii", "ignore")
    return _SLUG_RE.sub("-", ascii_.decode("ascii").lower()).strip("-")[:90]


# --- Text: vocabularies and templates ----------------------------------------------------------
# Written in NFC with the tone placement most outlets use (hòa, thủy, khỏe). Template slots
# ({name}) are filled per article, the same value in title and body.

_ALIAS_WEIGHTS = (("Huế", 0.36), ("TP Huế", 0.2), ("Thừa Thiên Huế", 0.2), ("TT-Huế", 0.1),
                  ("Thừa Thiên - Huế", 0.05), ("cố đô", 0.09))
_PLACE_WEIGHTS = (("Thừa Thiên Huế", 0.4), ("TP Huế", 0.35), ("TT-Huế", 0.15), ("Thừa Thiên - Huế", 0.1))

_VOCAB: dict[str, tuple[str, ...]] = {
    "site": ("Đại Nội", "lăng Tự Đức", "lăng Minh Mạng", "lăng Khải Định", "lăng Gia Long", "chùa Thiên Mụ",
             "điện Hòn Chén", "cung An Định", "Kinh thành Huế", "Văn Miếu", "đàn Nam Giao", "Hổ Quyền",
             "Tử Cấm Thành", "Thế Tổ Miếu"),
    "spot": ("chợ Đông Ba", "cầu Trường Tiền", "phố đi bộ Nguyễn Đình Chiểu", "đồi Vọng Cảnh", "biển Thuận An",
             "đầm Lập An", "Vườn quốc gia Bạch Mã", "làng hương Thủy Xuân", "phá Tam Giang", "cầu ngói Thanh Toàn"),
    "street": ("Lê Lợi", "Hùng Vương", "Trần Hưng Đạo", "Điện Biên Phủ", "Lê Duẩn", "Nguyễn Huệ", "Bà Triệu",
               "Võ Văn Kiệt", "Tố Hữu", "Nguyễn Tất Thành", "Đống Đa", "Phạm Văn Đồng"),
    "ward": ("Phú Hội", "Vĩnh Ninh", "Thuận Hòa", "An Cựu", "Vỹ Dạ", "Xuân Phú", "Thủy Xuân", "Hương Sơ",
             "Phú Hậu", "Thủy Biều", "Hương Long", "An Hòa"),
    "district": ("Phú Vang", "Phú Lộc", "Quảng Điền", "Phong Điền", "Hương Trà", "Hương Thủy", "A Lưới",
                 "Thuận Hóa", "Phú Xuân"),
    "bridge": ("Trường Tiền", "Phú Xuân", "Dã Viên", "Chợ Dinh", "Nguyễn Hoàng", "Bạch Hổ"),
    "festival": ("Festival Huế", "Festival Nghề truyền thống Huế", "Lễ hội Điện Hòn Chén", "Tuần lễ Áo dài Huế",
                 "Đêm Hoàng cung", "Lễ hội đường phố"),
    "ritual": ("lễ tế Nam Giao", "lễ Truyền Lô", "lễ Ban Sóc", "lễ thượng cờ", "lễ đổi gác Ngọ Môn"),
    "school": ("Đại học Huế", "Trường THPT chuyên Quốc Học", "Trường Đại học Y - Dược Huế",
               "Trường Đại học Sư phạm Huế", "Trường THPT Hai Bà Trưng", "Trường Đại học Khoa học Huế"),
    "holiday": ("Tết Nguyên đán", "nghỉ lễ 30/4 - 1/5", "Quốc khánh 2/9", "hè", "Tết Dương lịch", "cuối tuần"),
    "period": ("tháng qua", "quý III", "9 tháng đầu năm", "6 tháng đầu năm", "tuần qua", "10 tháng"),
    "weather": ("trời nắng, chiều tối có mưa rào vài nơi", "nhiều mây, có mưa nhỏ rải rác",
                "trời lạnh, mưa rải rác", "nắng nóng, nhiệt độ cao nhất 37 độ C",
                "sáng sớm có sương mù, ngày nắng nhẹ", "mưa vừa, có nơi mưa to, trời chuyển lạnh"),
    "product": ("nón lá", "mè xửng", "tôm chua", "trà cung đình", "áo dài", "gốm Phước Tích",
                "hoa giấy Thanh Tiên", "nước mắm Phú Thuận"),
}

# Number slots: (low, high, kind) drawn from one uniform.
_NUMBERS: dict[str, tuple[float, float, str]] = {
    "n": (5, 60, "int"), "n_small": (2, 9, "int"), "k": (2_000, 450_000, "thousands"),
    "pct": (3.0, 35.0, "decimal"), "ty": (50, 15_000, "thousands"), "temp": (14, 24, "int"),
    "temp_hot": (35, 40, "int"), "humidity": (70, 95, "int"),
}


@dataclass(frozen=True)
class _Template:
    text: str
    fields: tuple[str, ...]
    tags: tuple[str, ...]  # extra topics of this template


def _templates(entries: Sequence[str | tuple[str, tuple[str, ...]]]) -> tuple[_Template, ...]:
    out = []
    for entry in entries:
        text, tags = (entry, ()) if isinstance(entry, str) else entry
        fields = tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(text) if f))
        unknown = set(fields) - set(_VOCAB) - set(_NUMBERS) - {"hue", "Hue", "place", "Place", "date", "year"}
        assert not unknown, f"unknown slot(s) {unknown} in {text!r}"
        assert unicodedata.normalize("NFC", text) == text, text
        out.append(_Template(text, fields, tuple(tags)))
    return tuple(out)


@dataclass(frozen=True)
class _Topic:
    name: str
    tags: tuple[str, ...]
    mood: float  # mean sentiment of its ordinary articles
    titles: tuple[_Template, ...]
    leads: tuple[_Template, ...]  # first body sentence: always names the province
    details: tuple[_Template, ...]
    gripes: tuple[_Template, ...]  # mildly negative titles (sentiment -0.1..-0.45)
    gripe_leads: tuple[_Template, ...]


def _topic(name: str, tags: tuple[str, ...], mood: float, *, titles: Sequence[Any], leads: Sequence[Any],
           details: Sequence[Any], gripes: Sequence[Any], gripe_leads: Sequence[Any]) -> _Topic:
    topic = _Topic(name, tags, mood, _templates(titles), _templates(leads), _templates(details),
                   _templates(gripes), _templates(gripe_leads))
    for lead in topic.leads + topic.gripe_leads:
        named = {"hue", "Hue", "place", "Place"} & set(lead.fields) or "Huế" in lead.text or "cố đô" in lead.text
        assert named, f"lead without the province: {lead.text!r}"
    return topic


_TOPICS: tuple[_Topic, ...] = (
    _topic(
        "tourism", ("du lịch",), 0.45,
        titles=(
            "{Hue} đón hơn {k} lượt khách trong {period}",
            "Du khách đổ về {hue} dịp {holiday}",
            "{Hue} ra mắt tour đêm khám phá {site}",
            "Doanh thu du lịch {hue} tăng {pct}% so với cùng kỳ",
            "Khách quốc tế đến {hue} tăng mạnh trong {period}",
            "Trải nghiệm đi thuyền rồng nghe ca Huế trên sông Hương",
            ("{Hue} phát triển du lịch cộng đồng ở {district}", ("du lịch", "nông thôn")),
            "Du lịch xanh: {spot} hút khách trẻ",
            "Khách sạn ở {hue} kín phòng dịp {holiday}",
        ),
        leads=(
            "Theo Sở Du lịch {place}, trong {period} toàn địa bàn đón khoảng {k} lượt khách,"
            " khách quốc tế chiếm {pct}%.",
            "Dịp {holiday}, các điểm tham quan ở {hue} đông khách, nhiều cơ sở lưu trú đạt công suất trên {pct}%.",
            "Ngành du lịch {place} đặt mục tiêu đưa cố đô trở thành điểm đến hàng đầu khu vực.",
        ),
        details=(
            "Các điểm như {site} và {spot} luôn có đông du khách tham quan, chụp ảnh.",
            "Nhiều sản phẩm mới như du lịch đêm, ẩm thực cung đình và trải nghiệm làng nghề được giới thiệu.",
            "Du khách đánh giá cao sự thân thiện, hiếu khách và không khí thanh bình, hòa nhã của người dân.",
            "Các hãng lữ hành cho biết lượng đặt tour tăng khoảng {pct}% so với cùng kỳ năm trước.",
        ),
        gripes=(
            "Du khách phàn nàn giá dịch vụ tại {spot} tăng cao",
            "{Hue}: nhiều điểm đến còn thiếu nhà vệ sinh công cộng",
            "Cò mồi đeo bám du khách ở {spot} gây phiền hà",
        ),
        gripe_leads=(
            "Nhiều du khách phản ánh tình trạng tăng giá dịch vụ dịp {holiday} ở {hue}.",
            "Sở Du lịch {place} cho biết sẽ kiểm tra, chấn chỉnh các cơ sở kinh doanh bị phản ánh.",
        ),
    ),
    _topic(
        "heritage", ("di sản",), 0.4,
        titles=(
            "Trùng tu {site}: hoàn thành giai đoạn {n_small}",
            "{site} mở cửa phục vụ khách tham quan ban đêm",
            "Phát hiện dấu tích kiến trúc cổ trong khuôn viên {site}",
            "Quần thể di tích Cố đô Huế đón {k} lượt khách trong {period}",
            ("Số hóa tư liệu Mộc bản triều Nguyễn tại {hue}", ("di sản", "chuyển đổi số")),
            "Hồi sinh vườn nhà Huế ở {ward}",
            "Tái hiện {ritual} tại {site}",
        ),
        leads=(
            "Trung tâm Bảo tồn Di tích Cố đô Huế cho biết công trình tại {site} được thực hiện đúng tiến độ.",
            "Quần thể di tích cố đô là di sản văn hóa thế giới đầu tiên của Việt Nam được UNESCO công nhận năm 1993.",
            "Công tác bảo tồn di sản luôn được {place} xác định là nhiệm vụ trọng tâm.",
        ),
        details=(
            "Các hạng mục được phục dựng theo tư liệu lịch sử và ảnh chụp cũ, giữ nguyên giá trị gốc.",
            "Trong {period}, các điểm di tích thu hút khoảng {k} lượt khách, doanh thu đạt {ty} triệu đồng.",
            "Nhiều chuyên gia trong và ngoài nước tham gia góp ý phương án trùng tu.",
        ),
        gripes=(
            "Nhiều hạng mục tại {site} xuống cấp, chờ trùng tu",
            "Rêu phong, cỏ dại bám kín tường thành ở {hue}",
        ),
        gripe_leads=(
            "Theo ghi nhận ở {hue}, một số hạng mục tại {site} bị nứt, thấm dột sau mùa mưa.",
        ),
    ),
    _topic(
        "economy", ("kinh tế",), 0.3,
        titles=(
            "{Place}: thu ngân sách {period} đạt {ty} tỷ đồng",
            "GRDP {place} tăng {pct}%, cao hơn bình quân cả nước",
            ("{Place} thu hút {n} dự án mới vào Khu kinh tế Chân Mây - Lăng Cô", ("kinh tế", "đầu tư")),
            "Xuất khẩu của {place} tăng {pct}% trong {period}",
            "Giải ngân vốn đầu tư công ở {place} đạt {pct}% kế hoạch",
            "Đưa {product} Huế vào chuỗi sản phẩm OCOP",
            "Doanh nghiệp ở {hue} khởi sắc cuối năm",
        ),
        leads=(
            "Theo Sở Tài chính {place}, trong {period} các chỉ tiêu kinh tế chủ yếu đều đạt và vượt kế hoạch.",
            "Kinh tế {hue} tiếp tục phục hồi, nhiều doanh nghiệp mở rộng sản xuất.",
        ),
        details=(
            "Tổng vốn đăng ký của các dự án mới đạt khoảng {ty} tỷ đồng.",
            "Các ngành dịch vụ, du lịch và công nghiệp chế biến tăng trưởng khá, giải quyết việc làm cho {k} lao động.",
            "Tỉnh tiếp tục cải thiện môi trường đầu tư, hỗ trợ doanh nghiệp tiếp cận vốn và mặt bằng.",
        ),
        gripes=(
            "{Place}: giải ngân vốn đầu tư công còn chậm",
            "Nhiều dự án ở {place} chậm triển khai vì vướng mặt bằng",
        ),
        gripe_leads=(
            "Đến nay {place} mới giải ngân được {pct}% kế hoạch vốn, thấp hơn bình quân cả nước.",
        ),
    ),
    _topic(
        "traffic", ("giao thông",), 0.05,
        titles=(
            "{Place} điều chỉnh tổ chức giao thông trên đường {street}",
            "Khởi công nâng cấp đường {street}, TP Huế",
            "Cầu {bridge} hạn chế xe tải từ ngày {date}",
            "Tuyến buýt mới kết nối trung tâm {hue} với sân bay Phú Bài",
            "Thông xe tuyến đường ven sông Hương ở {ward}",
            ("{Place} ra quân bảo đảm trật tự an toàn giao thông dịp {holiday}", ("giao thông", "an ninh trật tự")),
        ),
        leads=(
            "Sở Xây dựng {place} cho biết phương án nhằm giảm ùn tắc vào giờ cao điểm.",
            "Theo UBND {place}, công trình có tổng vốn khoảng {ty} tỷ đồng, dự kiến hoàn thành sau {n} tháng.",
        ),
        details=(
            "Lực lượng chức năng bố trí người hướng dẫn, phân luồng tại các nút giao.",
            "Người dân được khuyến cáo chú ý biển báo và đi theo hướng dẫn của lực lượng chức năng.",
            "Dự án góp phần hoàn thiện hạ tầng đô thị, kết nối các phường {ward} và {district}.",
        ),
        gripes=(
            "Đường {street} ùn tắc giờ cao điểm, người dân mong sớm mở rộng",
            "Nhiều tuyến kiệt ở {hue} xuống cấp",
            "Đèn tín hiệu ở nút giao {street} thường xuyên trục trặc",
        ),
        gripe_leads=(
            "Người dân phường {ward}, {place} phản ánh tình trạng này kéo dài nhiều tháng.",
        ),
    ),
    _topic(
        "weather", ("thời tiết",), 0.0,
        titles=(
            "Thời tiết {hue} ngày {date}: {weather}",
            "{Hue} đón đợt không khí lạnh, nhiệt độ giảm còn {temp} độ C",
            "Nắng nóng gay gắt ở {hue}, nhiệt độ cao nhất {temp_hot} độ C",
            "Dự báo {hue} có mưa rào và dông vài nơi trong {n_small} ngày tới",
            ("Mưa lớn ở vùng núi A Lưới, {place} chủ động phương án ứng phó", ("thời tiết", "mưa lũ")),
            ("Gió mùa đông bắc tăng cường, biển {hue} động mạnh", ("thời tiết", "biển đảo")),
        ),
        leads=(
            "Đài Khí tượng Thủy văn {place} cho biết {weather}.",
            "Theo dự báo, thời tiết {hue} trong những ngày tới {weather}.",
        ),
        details=(
            "Nhiệt độ thấp nhất khoảng {temp} độ C, độ ẩm phổ biến {humidity}%.",
            "Người dân cần chú ý giữ gìn sức khỏe, đặc biệt là người già và trẻ nhỏ.",
            "Mực nước sông Hương tại Kim Long dao động ở mức thấp, các hồ chứa vận hành bình thường.",
        ),
        gripes=(
            "Mưa dông kèm lốc làm tốc mái nhiều nhà dân ở {district}",
            ("Mưa kéo dài, nông dân {hue} lo mất mùa", ("thời tiết", "nông nghiệp")),
        ),
        gripe_leads=(
            "Chính quyền {place} đã thống kê thiệt hại và hỗ trợ người dân khắc phục.",
        ),
    ),
    _topic(
        "education", ("giáo dục",), 0.35,
        titles=(
            "{school} tuyển sinh {k} chỉ tiêu năm học mới",
            "Học sinh {hue} đoạt {n} giải tại kỳ thi học sinh giỏi quốc gia",
            "{Place} đầu tư {ty} tỷ đồng xây trường học vùng khó khăn",
            "{school} khai giảng năm học mới",
            ("Trẻ mầm non ở {hue} được khám sức khỏe định kỳ", ("giáo dục", "y tế")),
        ),
        leads=(
            "Sở Giáo dục và Đào tạo {place} cho biết năm học này toàn tỉnh có khoảng {k} học sinh các cấp.",
            "Ngành giáo dục {hue} tiếp tục giữ vững chất lượng, nhiều học sinh đạt thành tích cao.",
        ),
        details=(
            "Nhà trường đã chuẩn bị đầy đủ cơ sở vật chất, đội ngũ giáo viên cho năm học mới.",
            "{school} là một trong những cơ sở đào tạo lâu đời, uy tín ở miền Trung.",
            "Nhiều phần thưởng được trao cho học sinh nghèo vượt khó, học giỏi.",
        ),
        gripes=(
            "Phụ huynh ở {hue} phản ánh tình trạng lạm thu đầu năm học",
            "Thiếu giáo viên tiếng Anh ở các trường vùng cao {district}",
        ),
        gripe_leads=(
            "Sở Giáo dục và Đào tạo {place} đã yêu cầu các trường rà soát, công khai các khoản thu.",
        ),
    ),
    _topic(
        "culture", ("văn hóa", "lễ hội"), 0.55,
        titles=(
            "{festival} {year} thu hút hàng nghìn du khách đến {hue}",
            "{Hue} ngập tràn sắc màu trong đêm khai mạc {festival}",
            "Nhã nhạc cung đình Huế biểu diễn tại {site}",
            "Tái hiện {ritual} tại {site}",
            "Đêm hòa nhạc bên sông Hương chào mừng {festival}",
            ("Nghệ nhân {hue} giữ nghề làm {product}", ("văn hóa", "làng nghề")),
        ),
        leads=(
            "Sở Văn hóa và Thể thao {place} cho biết {festival} năm nay có {n} chương trình nghệ thuật đặc sắc.",
            "Các hoạt động văn hóa diễn ra sôi nổi khắp cố đô, thu hút đông đảo người dân và du khách.",
        ),
        details=(
            "Nhiều đoàn nghệ thuật trong nước và quốc tế tham gia biểu diễn tại {site} và {spot}.",
            "Không gian lễ hội được trang trí rực rỡ, hòa quyện giữa nét cổ kính và hiện đại.",
            "Ban tổ chức bố trí lực lượng bảo đảm an ninh trật tự, an toàn cho người dân và du khách.",
        ),
        gripes=(
            "Vé xem {festival} khó mua, khán giả {hue} bức xúc",
        ),
        gripe_leads=(
            "Nhiều khán giả ở {hue} cho rằng khâu phân phối vé còn bất cập.",
        ),
    ),
    _topic(
        "administration", ("chính quyền",), 0.15,
        titles=(
            "UBND {place} họp báo thường kỳ {period}",
            "{Place} công bố quyết định về công tác cán bộ",
            "Chủ tịch UBND {place} tiếp công dân định kỳ",
            ("{Place} đẩy mạnh chuyển đổi số, {pct}% hồ sơ nộp trực tuyến", ("chính quyền", "chuyển đổi số")),
            "HĐND {place} khai mạc kỳ họp thứ {n_small}",
            "Sắp xếp đơn vị hành chính cấp xã ở {hue}: hoàn thành trước thời hạn",
        ),
        leads=(
            "Theo UBND {place}, trong {period} tình hình kinh tế - xã hội tiếp tục ổn định.",
            "Tại buổi làm việc, lãnh đạo {place} yêu cầu các sở, ngành giải quyết dứt điểm kiến nghị của người dân.",
        ),
        details=(
            "Tỉ lệ hồ sơ giải quyết đúng hạn đạt trên 98%, mức độ hài lòng của người dân tăng.",
            "Các đại biểu thảo luận nhiều nội dung về phát triển đô thị, an sinh xã hội và hòa giải cơ sở.",
            "Cổng dịch vụ công của tỉnh tiếp nhận {k} hồ sơ trực tuyến.",
        ),
        gripes=(
            "Người dân {ward} phản ánh chậm cấp giấy chứng nhận quyền sử dụng đất",
            "{Place}: còn {n} hồ sơ hành chính trễ hạn",
        ),
        gripe_leads=(
            "UBND {place} yêu cầu các đơn vị liên quan khẩn trương xử lý, trả lời người dân.",
        ),
    ),
)
_TOPIC_WEIGHTS_LOCAL = (0.14, 0.12, 0.14, 0.12, 0.10, 0.12, 0.12, 0.14)
_TOPIC_WEIGHTS_NATIONAL = (0.25, 0.15, 0.15, 0.10, 0.10, 0.08, 0.12, 0.05)
_CLOSERS = _templates((
    "Thông tin chi tiết được đăng tải trên cổng thông tin điện tử của {place}.",
    "Huế đang hướng tới mục tiêu trở thành thành phố di sản, văn hóa, sinh thái, cảnh quan, thân thiện môi trường.",
))
_BULLETIN_TITLE = _templates(("Bản tin dự báo thời tiết và phòng chống thiên tai ngày {date}",))[0]
_BULLETIN_LEAD = _templates((
    "Ban Chỉ huy Phòng chống thiên tai và Tìm kiếm cứu nạn {place} thông báo: {weather}.",
))[0]
_BULLETIN_DETAIL = _templates((
    "Mực nước sông Hương tại Kim Long và sông Bồ tại Phú Ốc ở mức thấp; các hồ chứa vận hành theo quy trình.",
))[0]
_BULLETIN_TOPICS = ["thời tiết", "phòng chống thiên tai"]

# Share of articles per hour of the local day (Vietnamese newsrooms: early morning and
# mid-morning peaks, quiet nights). Unverified shape.
_HOURLY = np.array([0.15, 0.1, 0.08, 0.08, 0.2, 0.6, 1.4, 1.8, 1.9, 1.7, 1.5, 1.3,
                    1.0, 1.0, 1.3, 1.5, 1.4, 1.2, 1.0, 1.0, 1.0, 0.8, 0.5, 0.3])
_HOURLY_P = _HOURLY / _HOURLY.sum()

# Url shapes of some outlets ({slug}, {n}: per-outlet article number); others use the default.
_URL_FORMATS = {
    "vnexpress.net": "https://vnexpress.net/{slug}-{n7}.html",
    "tuoitre.vn": "https://tuoitre.vn/{slug}-{stamp}{n3}.htm",
    "thanhnien.vn": "https://thanhnien.vn/{slug}-185{stamp6}{n3}.htm",
    "dantri.com.vn": "https://dantri.com.vn/{section}/{slug}-{stamp}.htm",
    "baothuathienhue.vn": "https://baothuathienhue.vn/{section}/{slug}-a{n6}.html",
}
_URL_DEFAULT = "https://{domain}/{section}/{slug}-{n6}.html"

# --- Incident texts ----------------------------------------------------------------------------

# Negative stories (one per negative_national / negative_wave): title variants (each outlet
# writes its own), leads, topics. No flood/dam keywords: these must not look like flood news.
_STORIES: tuple[tuple[tuple[_Template, ...], tuple[_Template, ...], tuple[str, ...]], ...] = (
    (_templates(("Du khách tố bị “chặt chém” khi đi thuyền rồng trên sông Hương ở {hue}",
                 "Chủ thuyền rồng ở {hue} bị yêu cầu giải trình vụ thu tiền cao bất thường",
                 "Hình ảnh du lịch {hue} bị ảnh hưởng vì nạn “chặt chém”")),
     _templates(("Một nhóm du khách phản ánh bị thu 1,5 triệu đồng cho chuyến thuyền 45 phút nghe ca Huế ở {hue}.",
                 "Nhiều người cho rằng hình ảnh cố đô bị ảnh hưởng nghiêm trọng.")),
     ("du lịch",)),
    (_templates(("{Hue}: hàng trăm hộ dân phản đối trạm trung chuyển rác gây ô nhiễm",
                 "Trạm rác ở {hue} bốc mùi, dân dựng lều chặn xe",
                 "Rác thải bủa vây phố cổ {hue}")),
     _templates(("Người dân phường {ward}, {place} bức xúc vì mùi hôi từ trạm trung chuyển rác kéo dài nhiều tháng.",
                 "Rác ùn ứ trên nhiều tuyến phố trung tâm {hue}, ảnh hưởng sức khỏe người dân.")),
     ("môi trường",)),
    (_templates(("Hàng chục học sinh ở {hue} nhập viện nghi ngộ độc thực phẩm",
                 "Vụ học sinh {hue} nghi ngộ độc: phụ huynh bức xúc vì bếp ăn bẩn",
                 "{Hue}: bếp ăn trường học bị đình chỉ sau vụ ngộ độc")),
     _templates(("Sau bữa trưa tại trường, hàng chục học sinh ở {place} đau bụng, nôn ói phải đưa đi cấp cứu.",
                 "Phụ huynh ở {hue} cho rằng nhà trường buông lỏng quản lý an toàn thực phẩm.")),
     ("giáo dục", "y tế")),
    (_templates(("{Place}: dự án chỉnh trang đô thị chậm tiến độ nhiều năm, dân khốn khổ",
                 "Dự án treo ở {hue}: hàng trăm hộ dân sống tạm bợ",
                 "Vì sao dự án chỉnh trang ở {hue} “đắp chiếu” suốt 10 năm?")),
     _templates(("Hàng trăm hộ dân ở {place} chờ tái định cư suốt nhiều năm, nhà cửa xuống cấp nghiêm trọng.",
                 "Người dân {hue} bức xúc vì dự án kéo dài, không thể sửa nhà hay chuyển nhượng đất.")),
     ("đô thị",)),
    (_templates(("Công trình trái phép xâm phạm vùng lõi di sản {site} ở {hue}",
                 "Xây dựng trái phép trong vùng bảo vệ di tích cố đô: trách nhiệm thuộc về ai?",
                 "{Hue}: nhà hàng mọc trái phép sát {site}")),
     _templates(("Một công trình kiên cố được xây dựng trái phép trong vùng bảo vệ di tích ở {place}.",
                 "Chuyên gia lo ngại giá trị di sản của cố đô bị xâm hại nghiêm trọng.")),
     ("di sản",)),
)

# Flood coverage: every title or lead carries "xả lũ" or "ngập" and a place of the Hương basin.
_FLOOD_TITLES = _templates((
    "Hồ Tả Trạch xả lũ, mực nước sông Hương lên nhanh",
    "Thủy điện Bình Điền tăng lưu lượng xả lũ, hạ du {hue} ngập sâu",
    "Nhiều tuyến đường ở {ward} ngập sâu, giao thông tê liệt",
    "{Hue}: hàng nghìn hộ dân bị ngập, chính quyền sơ tán khẩn cấp",
    "Nước sông Hương dâng cao, nhiều tuyến phố ở TP Huế ngập",
    "Hồ Hương Điền xả lũ, vùng trũng Quảng Điền ngập nặng",
    "Lũ lên nhanh trong đêm, nhiều nhà dân ở {district} ngập đến mái",
    "Các hồ thủy điện ở {hue} đồng loạt xả lũ",
))
_FLOOD_LEADS = _templates((
    "Mưa lớn kéo dài khiến nhiều tuyến đường ở {ward}, {place} ngập từ 0,5 đến 1 m.",
    "Các hồ Tả Trạch, Bình Điền và Hương Điền tiếp tục xả lũ, mực nước sông Hương tại Kim Long lên nhanh.",
    "Chính quyền {place} đã sơ tán hàng trăm hộ dân vùng trũng thấp đến nơi an toàn.",
))
_FLOOD_TOPICS = (("lũ lụt",), ("thời tiết", "lũ lụt"), ("thủy điện", "lũ lụt"), ("mưa lũ",))
_DAM_RUMOUR_TITLE = _templates(("Thông tin “vỡ đập Tả Trạch” là sai sự thật",))[0]
_DAM_RUMOUR_LEAD = _templates((
    "Ban Chỉ huy Phòng chống thiên tai {place} khẳng định đập Tả Trạch vẫn an toàn, tin vỡ đập lan truyền trên mạng"
    " xã hội là bịa đặt.",
))[0]

# Storm/disaster articles of a topic spike: flood topics, none of the flood/dam keywords.
_SPIKE_TITLES = _templates((
    ("Bão số {n_small} hướng vào miền Trung, {hue} cấm biển từ chiều nay", ("thiên tai", "biển đảo")),
    ("{Hue} khẩn trương sơ tán dân vùng ven biển trước bão", ("bão lũ",)),
    ("Mưa lớn diện rộng, {place} chủ động phương án phòng chống thiên tai", ("thời tiết", "mưa lũ")),
    ("Học sinh {hue} nghỉ học để tránh bão", ("thiên tai", "giáo dục")),
    ("{Place} kêu gọi tàu thuyền vào nơi tránh trú an toàn", ("bão lũ", "biển đảo")),
    ("Áp thấp nhiệt đới mạnh lên thành bão, {hue} họp khẩn ứng phó", ("thiên tai",)),
    ("Sạt lở đất ở vùng núi A Lưới, {place} di dời {n} hộ dân", ("thiên tai", "mưa lũ")),
))
_SPIKE_LEADS = _templates((
    "Ban Chỉ huy Phòng chống thiên tai {place} yêu cầu các địa phương theo dõi chặt chẽ diễn biến của bão.",
    "Lực lượng chức năng ở {hue} đã đưa {n} hộ dân ven biển, vùng thấp trũng đến nơi trú ẩn an toàn.",
))
_SPIKE_TOPICS = (("thiên tai",),)  # every spike title has its own topics


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0 + 1e-9
    return out


_ALIAS_CUM = _cumulative([w for _, w in _ALIAS_WEIGHTS])
_PLACE_CUM = _cumulative([w for _, w in _PLACE_WEIGHTS])
_TOPIC_CUM_LOCAL = _cumulative(_TOPIC_WEIGHTS_LOCAL)
_TOPIC_CUM_NATIONAL = _cumulative(_TOPIC_WEIGHTS_NATIONAL)
_SECTIONS = {"tourism": "du-lich", "heritage": "van-hoa", "economy": "kinh-te", "traffic": "xa-hoi",
             "weather": "thoi-tiet", "education": "giao-duc", "culture": "van-hoa", "administration": "chinh-tri",
             "incident": "thoi-su"}

_N_UNIFORMS = 24  # uniforms per article: 0-11 choices and variants, 12.. slots
_SLOT_BASE = 12


_DAY_PREFIX: dict[int, str] = {}


def _fast_ts(t: float) -> str:
    """format_ts for whole seconds, with the date part cached per UTC day."""
    if not float(t).is_integer():
        return format_ts(t)
    day, second = divmod(int(t), 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = format_ts(day * 86400.0)[:11]
    hour, rest = divmod(second, 3600)
    return f"{prefix}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(fields: Sequence[str], u: Sequence[float], date: str, year: str) -> dict[str, str]:
    """Values of template slots from uniforms u[_SLOT_BASE:] (one per slot, in order)."""
    values: dict[str, str] = {}
    k = _SLOT_BASE
    for name in fields:
        if name in values:
            continue
        x = u[k] if k < len(u) else u[k % len(u)]
        k += 1
        if name in ("hue", "Hue"):
            alias = _ALIAS_WEIGHTS[bisect.bisect_left(_ALIAS_CUM, x)][0]
            values["hue"], values["Hue"] = alias, _cap(alias)
        elif name in ("place", "Place"):
            place = _PLACE_WEIGHTS[bisect.bisect_left(_PLACE_CUM, x)][0]
            values["place"], values["Place"] = place, _cap(place)
        elif name == "date":
            values["date"] = date
        elif name == "year":
            values["year"] = year
        elif name in _NUMBERS:
            lo, hi, kind = _NUMBERS[name]
            v = lo + (hi - lo) * x
            if kind == "int":
                values[name] = str(int(v))
            elif kind == "decimal":
                values[name] = f"{v:.1f}".replace(".", ",")
            else:
                values[name] = f"{int(v):,}".replace(",", ".")
        else:
            vocab = _VOCAB[name]
            values[name] = vocab[int(x * len(vocab))]
    return values


class PressSimulator:
    """Articles about Thừa Thiên Huế from the reference outlets, with labelled incidents.

    Knobs: `rate_scale` multiplies every outlet's articles per day (`Outlet.articles_per_day`);
    `nfd_share`, `tone_share`, `eth_share` are the shares of articles typed in NFD, with the
    other tone placement, with Ð for Đ; `gripe_share` the share of mildly negative articles;
    `bulletin_hours` the local hours of the daily disaster-prevention bulletin, published by
    `bulletin_outlet` (the provincial radio-TV; the first local outlet if it is missing).
    """

    stream = "press"
    incident_kinds: tuple[str, ...] = tuple(INCIDENT_RULES)

    def __init__(
        self,
        *,
        seed: int = 0,
        start: float,
        reference_path: str | Path = DEFAULT_REFERENCE_PATH,
        rate_scale: float = 1.0,
        nfd_share: float = 0.15,
        tone_share: float = 0.2,
        eth_share: float = 0.03,
        gripe_share: float = 0.08,
        bulletin_hours: Sequence[float] = (6.0, 17.0),
        bulletin_outlet: str = "trt.com.vn",
    ) -> None:
        if not (math.isfinite(rate_scale) and rate_scale >= 0):
            raise ValueError(f"rate_scale ({rate_scale}) must be a number >= 0")
        for name, share in (("nfd_share", nfd_share), ("tone_share", tone_share), ("eth_share", eth_share),
                            ("gripe_share", gripe_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} ({share}) must be within 0..1")
        if any(not 0.0 <= h < 24.0 for h in bulletin_hours):
            raise ValueError(f"bulletin_hours ({list(bulletin_hours)}) must be local hours within 0..24")
        self.seed = seed
        self.start = float(start)
        self.outlets = load_outlets(reference_path)
        self.rate_scale = float(rate_scale)
        self.nfd_share, self.tone_share, self.eth_share = nfd_share, tone_share, eth_share
        self.gripe_share = gripe_share
        self.bulletin_hours = tuple(sorted(float(h) for h in bulletin_hours))
        self._index = {o.source_id: i for i, o in enumerate(self.outlets)}
        locals_ = [i for i, o in enumerate(self.outlets) if not o.national]
        self._bulletin_outlet = self._index.get(bulletin_outlet, locals_[0] if locals_ else 0)
        # Per outlet, precomputed: articles a day and the engagement scale (reads of a typical
        # article: a share of the monthly reach; unverified).
        self._rates = [o.articles_per_day * self.rate_scale for o in self.outlets]
        self._engagement = [o.reach * (1.5e-4 if o.national else 2.5e-4) for o in self.outlets]
        self._incidents: list[tuple[Incident, list[tuple[float, dict[str, Any]]]]] = []

    # --- public -------------------------------------------------------------------------------

    @property
    def spike_ready_at(self) -> float:
        """Earliest `at` of a `topic_spike` that press.topic.flood.spike can judge: the first
        bulletin (the first flood-topic article of the background) plus the rule's history."""
        first = self._first_bulletin()
        if first is None:
            return math.inf
        return first - first % 360.0 + SPIKE_HISTORY_S

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        """Schedule an incident (see the module docstring for the kinds and their parameters).

        Parameters: `negative_national`: outlet (a national source_id; default: drawn),
        sentiment (-1..-0.5, default -0.72), articles (default 1 + one follow-up per 2 h).
        `negative_wave`: outlets (how many, >= 5, default 6), story (0..4, default drawn),
        sentiment (worst, default -0.8). `flood_coverage`: outlets (>= 5, default 7), articles
        (default outlets + 1 per hour), dam_rumour (bool), kim_long_above_bd2 (bool: the
        scenario floods Kim Long above BĐ2 meanwhile; adds the cross-stream rules, keys {}).
        `topic_spike`: articles (>= 6, default 12; the first 6 within 40 min).
        `syndicated_story`: outlets (>= 5, default 6), story (an index into the data file's
        stories, default drawn).
        """
        if kind not in INCIDENT_RULES:
            raise ValueError(f"unknown press incident {kind!r} (allowed: {', '.join(INCIDENT_RULES)})")
        if not (math.isfinite(at) and at >= self.start):
            raise ValueError(f"at ({at}) must be at or after the simulation start ({self.start})")
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration ({duration}) must be >= 0 seconds")
        number = len(self._incidents) + 1
        rng = np.random.default_rng([self.seed, number])
        incident_id = f"press-{kind}-{number}"
        plan = getattr(self, f"_plan_{kind}")
        keys, planned, resolved = plan(rng, incident_id, at, duration, dict(params))
        rules = INCIDENT_RULES[kind]
        if kind == "flood_coverage" and resolved["kim_long_above_bd2"]:
            rules = rules + _CROSS_STREAM_RULES + ((_DAM_BREAK_RULE,) if resolved["dam_rumour"] else ())
        planned.sort(key=lambda item: item[0])
        incident = Incident(id=incident_id, stream=self.stream, kind=kind, keys=keys, start=planned[0][0],
                            end=planned[-1][0], rules=rules, params=resolved)
        self._incidents.append((incident, planned))
        return incident

    @property
    def incidents(self) -> list[Incident]:
        return [incident for incident, _ in self._incidents]

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Every article from `start` to before `end` (event time), ts-ordered: background and
        incidents merged (background first at equal times)."""
        streams: list[Iterator[tuple[float, int, dict[str, Any]]]] = [self._background(end)]
        for order, (_, planned) in enumerate(self._incidents, start=1):
            streams.append(((t, order, {**e, "topics": list(e["topics"])}) for t, e in planned if t < end))
        for _, _, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            yield event

    # --- background ---------------------------------------------------------------------------

    def _first_day(self) -> float:
        local = self.start + _LOCAL_OFFSET_S
        return local - local % _DAY_S - _LOCAL_OFFSET_S

    def _first_bulletin(self) -> float | None:
        if not self.bulletin_hours or self.rate_scale == 0:
            return None
        day = self._first_day()
        while True:
            for hour in self.bulletin_hours:
                if day + hour * 3600.0 >= self.start:
                    return day + hour * 3600.0
            day += _DAY_S

    def _background(self, end: float) -> Iterator[tuple[float, int, dict[str, Any]]]:
        rng = np.random.default_rng(self.seed)
        counters = [0] * len(self.outlets)
        outlets_range = range(len(self.outlets))
        day = self._first_day()
        while day < end:
            times: list[np.ndarray] = []
            who: list[np.ndarray] = []
            for i in outlets_range:
                n = int(rng.poisson(self._rates[i]))
                hours = rng.choice(24, size=n, p=_HOURLY_P)
                seconds = rng.integers(0, 3600, size=n)
                times.append(day + hours * 3600.0 + seconds)
                who.append(np.full(n, i))
            bulletins = [day + h * 3600.0 for h in self.bulletin_hours] if self.rate_scale > 0 else []
            t_all = np.concatenate([*times, np.array(bulletins, dtype=float)])
            o_all = np.concatenate([*who, np.full(len(bulletins), self._bulletin_outlet)]).astype(int)
            is_bulletin = np.concatenate([np.zeros(len(t_all) - len(bulletins), bool), np.ones(len(bulletins), bool)])
            order = np.lexsort((o_all, t_all))
            uniforms = rng.random((len(t_all), _N_UNIFORMS)).tolist()
            normals = rng.standard_normal((len(t_all), 2)).tolist()
            local_day = format_ts(day + _LOCAL_OFFSET_S)  # YYYY-MM-DD of the local day
            date = f"{int(local_day[8:10])}/{int(local_day[5:7])}"
            year = local_day[:4]
            for row, j in enumerate(order.tolist()):
                t = float(t_all[j])
                if t < self.start:
                    continue
                if t >= end:
                    break
                i = int(o_all[j])
                counters[i] += 1
                event_id = f"{self.outlets[i].source_id}-{counters[i]:06d}"
                if is_bulletin[j]:
                    event = self._bulletin(t, i, event_id, uniforms[row], date, year)
                else:
                    event = self._article(t, i, event_id, uniforms[row], normals[row], date, year)
                yield t, 0, event
            day += _DAY_S

    def _article(self, t: float, i: int, event_id: str, u: list[float], z: list[float], date: str,
                 year: str) -> dict[str, Any]:
        outlet = self.outlets[i]
        cum = _TOPIC_CUM_NATIONAL if outlet.national else _TOPIC_CUM_LOCAL
        topic = _TOPICS[bisect.bisect_left(cum, u[0])]
        gripe = u[1] < self.gripe_share
        if gripe:
            title = topic.gripes[int(u[2] * len(topic.gripes))]
            lead = topic.gripe_leads[int(u[3] * len(topic.gripe_leads))]
            sentiment = -0.1 - 0.35 * u[6]
        else:
            title = topic.titles[int(u[2] * len(topic.titles))]
            lead = topic.leads[int(u[3] * len(topic.leads))]
            sentiment = min(0.95, max(-0.4, topic.mood + 0.18 * z[0]))
        parts = [title, lead, topic.details[int(u[4] * len(topic.details))]]
        if u[5] < 0.4:
            parts.append(_CLOSERS[int(u[7] * len(_CLOSERS))])
        fields = [f for p in parts for f in p.fields]
        values = _fill(fields, u, date, year)
        tags = title.tags or topic.tags
        return self._event(t, i, event_id, title.text.format_map(values),
                           " ".join(p.text.format_map(values) for p in parts[1:]), list(tags), sentiment,
                           self._engagement[i] * math.exp(0.8 * z[1]) * (1.5 if gripe else 1.0), u, topic.name)

    def _bulletin(self, t: float, i: int, event_id: str, u: list[float], date: str, year: str) -> dict[str, Any]:
        parts = (_BULLETIN_TITLE, _BULLETIN_LEAD, _BULLETIN_DETAIL)
        values = _fill([f for p in parts for f in p.fields], u, date, year)
        return self._event(t, i, event_id, _BULLETIN_TITLE.text.format_map(values),
                           " ".join(p.text.format_map(values) for p in parts[1:]), list(_BULLETIN_TOPICS), 0.0,
                           self._engagement[i] * 0.3 * (0.5 + u[8]), u, "weather")

    def _event(self, t: float, i: int, event_id: str, title: str, body: str, topics: list[str], sentiment: float,
               engagement: float, u: Sequence[float], section: str) -> dict[str, Any]:
        """The event dict: text retyped per the variant shares (u[9..11]), url, outlet flags."""
        outlet = self.outlets[i]
        ts = _fast_ts(t)
        url = self._url(outlet, ts, title, event_id, section)
        nfd, tone, eth = u[9] < self.nfd_share, u[10] < self.tone_share, u[11] < self.eth_share
        if nfd or tone or eth:
            title = retype(title, nfd=nfd, tone=tone, eth=eth)
            body = retype(body, nfd=nfd, tone=tone, eth=eth)
        return {
            "source_id": outlet.source_id,
            "ts": ts,
            "id": event_id,
            "url": url,
            "title": title,
            "body": body,
            "lang": "vi",
            "topics": topics,
            "sentiment": round(sentiment, 2),
            "engagement": round(engagement),
            "is_official": outlet.official,
        }

    @staticmethod
    def _url(outlet: Outlet, ts: str, title: str, event_id: str, section: str) -> str:
        number = int(event_id.rsplit("-", 1)[1]) if event_id[-1].isdigit() else 0
        serial = zlib.crc32(event_id.encode()) % 9_000_000 + 1_000_000
        stamp = ts[0:4] + ts[5:7] + ts[8:10] + ts[11:13] + ts[14:16] + ts[17:19]
        return _URL_FORMATS.get(outlet.source_id, _URL_DEFAULT).format(
            domain=outlet.source_id, section=_SECTIONS.get(section, "tin-tuc"), slug=_slug(title),
            n7=serial, n6=serial % 1_000_000 + number % 10, n3=f"{number % 1000:03d}", stamp=stamp,
            stamp6=stamp[2:12],
        )

    # --- incidents ----------------------------------------------------------------------------

    def _incident_event(self, rng: np.random.Generator, t: float, i: int, event_id: str,
                        titles: Sequence[_Template], leads: Sequence[_Template], extra: Sequence[_Template],
                        topics: Sequence[str], sentiment: float, boost: float) -> dict[str, Any]:
        u = rng.random(_N_UNIFORMS).tolist()
        title = titles[int(u[2] * len(titles))]
        first = int(u[3] * len(leads))
        chosen = [first]
        if len(leads) > 1:  # a second, different sentence, in the order written
            chosen = sorted((first, (first + 1 + int(u[4] * (len(leads) - 1))) % len(leads)))
        parts = [title, *(leads[k] for k in chosen), *extra]
        local_day = format_ts(t + _LOCAL_OFFSET_S)
        values = _fill([f for p in parts for f in p.fields], u, f"{int(local_day[8:10])}/{int(local_day[5:7])}",
                       local_day[:4])
        engagement = self._engagement[i] * boost * math.exp(0.5 * float(rng.standard_normal()))
        return self._event(t, i, event_id, title.text.format_map(values),
                           " ".join(p.text.format_map(values) for p in parts[1:]), list(title.tags or topics),
                           sentiment, engagement, u, "incident")

    def _outlet_param(self, value: Any, *, national: bool | None = None) -> int:
        if not isinstance(value, str) or value not in self._index:
            raise ValueError(f"outlet {value!r} is not in the reference data ({', '.join(self._index)})")
        i = self._index[value]
        if national is not None and self.outlets[i].national != national:
            raise ValueError(f"outlet {value!r} is not a {'national' if national else 'local'} outlet")
        return i

    @staticmethod
    def _check_params(kind: str, params: dict[str, Any], allowed: set[str]) -> None:
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"{kind}: unknown parameter(s) {', '.join(sorted(unknown))}"
                             f" (allowed: {', '.join(sorted(allowed))})")

    @staticmethod
    def _int_param(kind: str, name: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{kind}: {name} ({value!r}) must be a whole number within {low}..{high}")
        return value

    def _pick_outlets(self, rng: np.random.Generator, count: int, first: int | None = None) -> list[int]:
        """`count` distinct outlets, more likely the widely read ones (weights: sqrt of reach)."""
        weights = np.array([math.sqrt(o.reach) for o in self.outlets])
        chosen = [first] if first is not None else []
        if first is not None:
            weights[first] = 0.0
        rest = rng.choice(len(self.outlets), size=count - len(chosen), replace=False, p=weights / weights.sum())
        return chosen + [int(x) for x in rest]

    def _plan_negative_national(self, rng: np.random.Generator, incident_id: str, at: float, duration: float,
                                params: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        kind = "negative_national"
        self._check_params(kind, params, {"outlet", "sentiment", "articles", "story"})
        nationals = [i for i, o in enumerate(self.outlets) if o.national]
        if not nationals:
            raise ValueError(f"{kind}: the reference data has no national outlet")
        default_outlet = self.outlets[nationals[int(rng.integers(len(nationals)))]].source_id
        i = self._outlet_param(params.get("outlet", default_outlet), national=True)
        sentiment = params.get("sentiment", -0.72)
        if isinstance(sentiment, bool) or not isinstance(sentiment, (int, float)) or not -1.0 <= sentiment <= -0.5:
            raise ValueError(f"{kind}: sentiment ({sentiment!r}) must be within -1..-0.5")
        articles = self._int_param(kind, "articles", params.get("articles", 1 + int(duration // 7200)), 1, 100)
        story = self._int_param(kind, "story", params.get("story", int(rng.integers(len(_STORIES)))), 0,
                                len(_STORIES) - 1)
        titles, leads, topics = _STORIES[story]
        planned = []
        for k in range(articles):
            t = at if k == 0 else at + round(duration * k / max(1, articles - 1))
            s = sentiment if k == 0 else max(-1.0, min(-0.5, sentiment + 0.1 * float(rng.standard_normal())))
            event_id = f"{self.outlets[i].source_id}-{incident_id}-{k:03d}"
            planned.append((t, self._incident_event(rng, t, i, event_id, titles, leads, (), topics, s, 4.0)))
        resolved = {"outlet": self.outlets[i].source_id, "sentiment": sentiment, "articles": articles, "story": story}
        return {"source_id": self.outlets[i].source_id}, planned, resolved

    def _plan_negative_wave(self, rng: np.random.Generator, incident_id: str, at: float, duration: float,
                            params: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        kind = "negative_wave"
        self._check_params(kind, params, {"outlets", "story", "sentiment"})
        count = self._int_param(kind, "outlets", params.get("outlets", min(6, len(self.outlets))), _STORY_OUTLETS,
                                len(self.outlets))
        story = self._int_param(kind, "story", params.get("story", int(rng.integers(len(_STORIES)))), 0,
                                len(_STORIES) - 1)
        worst = params.get("sentiment", -0.8)
        if isinstance(worst, bool) or not isinstance(worst, (int, float)) or not -1.0 <= worst <= -0.5:
            raise ValueError(f"{kind}: sentiment ({worst!r}) must be within -1..-0.5")
        # The first national outlet breaks the story; the others pick it up within the 6 h window.
        nationals = [i for i, o in enumerate(self.outlets) if o.national]
        first = nationals[int(rng.integers(len(nationals)))] if nationals else None
        chosen = self._pick_outlets(rng, count, first)
        span = min(duration, _STORY_WINDOW_S - 3600.0)
        offsets = [0.0, *sorted(float(x) for x in rng.uniform(0.0, span, size=count - 1))]
        titles, leads, topics = _STORIES[story]
        planned = []
        for k, (i, offset) in enumerate(zip(chosen, offsets, strict=True)):
            t = at + round(offset)
            s = worst + (-0.5 - worst) * float(rng.random())
            event_id = f"{self.outlets[i].source_id}-{incident_id}-{k:03d}"
            planned.append((t, self._incident_event(rng, t, i, event_id, titles, leads, (), topics, s, 5.0)))
        resolved = {"outlets": [self.outlets[i].source_id for i in chosen], "story": story, "sentiment": worst}
        return {}, planned, resolved

    def _plan_flood_coverage(self, rng: np.random.Generator, incident_id: str, at: float, duration: float,
                             params: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        kind = "flood_coverage"
        self._check_params(kind, params, {"outlets", "articles", "dam_rumour", "kim_long_above_bd2"})
        count = self._int_param(kind, "outlets", params.get("outlets", min(7, len(self.outlets))), _STORY_OUTLETS,
                                len(self.outlets))
        articles = self._int_param(kind, "articles", params.get("articles", count + int(duration // 3600)), count,
                                   2000)
        flags = {}
        for name in ("dam_rumour", "kim_long_above_bd2"):
            flags[name] = params.get(name, False)
            if not isinstance(flags[name], bool):
                raise ValueError(f"{kind}: {name} ({flags[name]!r}) must be true or false")
        # Local outlets first (they cover their own flood), then the national ones.
        locals_ = [i for i, o in enumerate(self.outlets) if not o.national]
        nationals = [i for i, o in enumerate(self.outlets) if o.national]
        if nationals:
            weights = np.array([math.sqrt(self.outlets[i].reach) for i in nationals])
            nationals = [int(x) for x in rng.choice(nationals, size=len(nationals), replace=False,
                                                      p=weights / weights.sum())]
        chosen = (locals_ + nationals)[:count]
        # The first `count` articles (one per outlet) within 5 h; then updates over the duration,
        # mostly from the local outlets.
        span = min(duration, _STORY_WINDOW_S - 3600.0)
        offsets = [0.0, *sorted(float(x) for x in rng.uniform(0.0, span, size=count - 1))]
        who = list(chosen)
        if articles > count:
            offsets += [float(x) for x in rng.uniform(0.0, duration, size=articles - count)]
            local_pool = [i for i in chosen if not self.outlets[i].national] or chosen
            who += [local_pool[int(x)] for x in rng.integers(len(local_pool), size=articles - count)]
        planned = []
        rumour_at = int(rng.integers(1, count)) if flags["dam_rumour"] else -1
        for k, (i, offset) in enumerate(zip(who, offsets, strict=True)):
            t = at + round(offset)
            s = -0.2 - 0.25 * float(rng.random())
            event_id = f"{self.outlets[i].source_id}-{incident_id}-{k:03d}"
            if k == rumour_at:
                event = self._incident_event(rng, t, i, event_id, (_DAM_RUMOUR_TITLE,), (_DAM_RUMOUR_LEAD,), (),
                                             ("thủy điện", "lũ lụt"), s, 6.0)
            else:
                topics = _FLOOD_TOPICS[int(rng.integers(len(_FLOOD_TOPICS)))]
                event = self._incident_event(rng, t, i, event_id, _FLOOD_TITLES, _FLOOD_LEADS, (), topics, s, 3.0)
            planned.append((t, event))
        resolved = {"outlets": [self.outlets[i].source_id for i in chosen], "articles": articles, **flags}
        keys: dict[str, Any] = {} if flags["kim_long_above_bd2"] else {"lang": "vi"}
        return keys, planned, resolved

    def _plan_topic_spike(self, rng: np.random.Generator, incident_id: str, at: float, duration: float,
                          params: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        kind = "topic_spike"
        self._check_params(kind, params, {"articles"})
        articles = self._int_param(kind, "articles", params.get("articles", 12), _SPIKE_MIN_ARTICLES, 2000)
        ready = self.spike_ready_at
        if at < ready:
            raise ValueError(
                f"{kind}: at must be at least {format_ts(ready)} (press.topic.flood.spike needs a 7-day"
                f" baseline: the first bulletin {format_ts(self._first_bulletin() or math.inf)} + 7d54m;"
                f" {(ready - self.start) / 86400:.2f} days after the start)"
            )
        dense = min(duration, 2400.0)
        offsets = [0.0, *sorted(float(x) for x in rng.uniform(0.0, dense, size=_SPIKE_MIN_ARTICLES - 1))]
        offsets += [float(x) for x in rng.uniform(0.0, duration, size=articles - _SPIKE_MIN_ARTICLES)]
        planned = []
        for k, offset in enumerate(offsets):
            t = at + round(offset)
            i = self._pick_outlets(rng, 1)[0]
            topics = _SPIKE_TOPICS[int(rng.integers(len(_SPIKE_TOPICS)))]
            event_id = f"{self.outlets[i].source_id}-{incident_id}-{k:03d}"
            s = -0.1 - 0.3 * float(rng.random())
            planned.append((t, self._incident_event(rng, t, i, event_id, _SPIKE_TITLES, _SPIKE_LEADS, (), topics,
                                                    s, 2.0)))
        return {"lang": "vi"}, planned, {"articles": articles}

    def _plan_syndicated_story(self, rng: np.random.Generator, incident_id: str, at: float, duration: float,
                               params: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        kind = "syndicated_story"
        self._check_params(kind, params, {"outlets", "story"})
        bylines, stories = _syndicated_stories()
        count = self._int_param(kind, "outlets", params.get("outlets", min(6, len(self.outlets))), _STORY_OUTLETS,
                                len(self.outlets))
        story = self._int_param(kind, "story", params.get("story", int(rng.integers(len(stories)))), 0,
                                len(stories) - 1)
        chosen = self._pick_outlets(rng, count)
        span = min(duration, _STORY_WINDOW_S - 3600.0)
        offsets = [0.0, *sorted(float(x) for x in rng.uniform(0.0, span, size=count - 1))]
        titles, body, topics = stories[story]["titles"], stories[story]["body"], stories[story]["topics"]
        planned = []
        for k, (i, offset) in enumerate(zip(chosen, offsets, strict=True)):
            t = at + round(offset)
            sentences = list(body)
            title = titles[0]
            if k > 0:  # the first outlet publishes the original; the others edit it a little
                title = titles[int(rng.integers(len(titles)))]
                if len(sentences) > 3 and rng.random() < 0.5:
                    del sentences[2 + int(rng.integers(len(sentences) - 2))]
                if rng.random() < 0.6:
                    sentences.insert(0, bylines[int(rng.integers(len(bylines)))])
            sentiment = float(stories[story]["sentiment"]) + 0.05 * float(rng.standard_normal())
            event_id = f"{self.outlets[i].source_id}-{incident_id}-{k:03d}"
            engagement = self._engagement[i] * 2.0 * math.exp(0.5 * float(rng.standard_normal()))
            u = rng.random(_N_UNIFORMS).tolist()
            planned.append((t, self._event(t, i, event_id, title, " ".join(sentences), list(topics),
                                           max(-0.4, min(0.95, sentiment)), engagement, u, "incident")))
        resolved = {"outlets": [self.outlets[i].source_id for i in chosen], "story": story}
        return {"lang": "vi"}, planned, resolved


def _syndicated_stories(path: Path = SYNDICATED_PATH) -> tuple[list[str], list[dict[str, Any]]]:
    """Bylines and stories of the data file (read once)."""
    cached = _SYNDICATED.get(path)
    if cached is None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cached = _SYNDICATED[path] = (list(data["bylines"]), list(data["stories"]))
    return cached


_SYNDICATED: dict[Path, tuple[list[str], list[dict[str, Any]]]] = {}
