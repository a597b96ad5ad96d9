"""The demo's world as data: customers, open complaints and the agent roster (pure, deterministic).

Nothing here touches a database; :mod:`cti.demo.seed` writes it. Numbers are Chinese mobile and
landline numbers in national form (what a trunk sends as caller ID); the same list feeds the
simulated PBX as its *known callers*.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from cti.stats.erlang import agents_required

#: The skill groups (queues of ``asterisk-config/queues.conf``) and the extension block of their phones.
GROUPS = {"mobile": 1000, "appliances": 2000, "complaints": 3000}

#: Demo passwords (printed by ``cti demo``; the console refuses fewer than 8 characters).
AGENT_PASSWORD = "demo-agent"
SUPERVISOR_PASSWORD = "demo-supervisor"
ADMIN_PASSWORD = "demo-admin"

_ZH_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
#: Given names by sex: a customer's title (先生 / 女士, Mr. / Ms.) follows the sex its given name reads as.
_ZH_GIVEN = {"male": ("伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "建华", "志刚"),
             "female": ("芳", "娜", "敏", "静", "丽", "艳", "娟", "秀英", "桂兰", "婷", "雪梅")}
ZH_TITLE = {"male": "先生", "female": "女士"}
_EN = (("Smith", "John", "Mr.", "male"), ("Brown", "Emily", "Ms.", "female"), ("Taylor", "James", "Mr.", "male"),
       ("Wilson", "Olivia", "Ms.", "female"), ("Johnson", "Michael", "Dr.", "male"),
       ("Davies", "Sarah", "Mrs.", "female"), ("Evans", "David", "Mr.", "male"), ("O'Brien", "Kate", "Ms.", "female"),
       ("Clarke", "Thomas", "Mr.", "male"), ("Hughes", "Grace", "Ms.", "female"))
#: What a recent buyer bought (the packaged cross-sell rules offer them an accessory).
_RECENT_MODELS = {"mobile": "Phone X", "appliances": "美的微波炉 M3"}
_MODELS = {
    "appliances": ("美的微波炉 M3", "海尔冰箱 BCD-470", "格力空调 KFR-35", "小天鹅洗衣机 TG100", "苏泊尔电饭煲 SF40"),
    "mobile": ("Phone X", "Phone X Pro", "Phone Lite 5", "Pad Air"),
    "office": ("LaserJet 400 打印机", "ScanPro 复印机", "Office Router AX"),
}
_COMPLAINTS = ("微波炉不加热，已报修两次", "手机屏幕碎裂，保修被拒", "空调安装师傅迟到三小时",
               "The printer was delivered broken", "冰箱噪音大，要求换货")


@dataclass(frozen=True)
class DemoCustomer:
    fields: dict[str, str]  # the documented CSV columns (customer_from_fields)
    caller_number: str  # the number the simulated PBX dials from
    caller_name: str  # the CNAM it sends
    complaint: str | None = None  # an open complaint's description
    complaint_line: str | None = None
    sex: str = ""  # "male" / "female": agrees with the title and the given name


@dataclass(frozen=True)
class DemoAgent:
    username: str
    display_name: str
    interface: str
    queue: str
    language: str = "zh"
    featured: bool = False  # printed login: its simulated phone rings long enough for a human to see it


@dataclass(frozen=True)
class Roster:
    agents: tuple[DemoAgent, ...]
    supervisor: str = "supervisor"
    admin: str = "admin"
    sizing: dict[str, int] = field(default_factory=dict)  # agents per queue from Erlang C


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(("135", "136", "138", "139", "150", "158", "186", "188"))
    return prefix + "".join(rng.choice("0123456789") for _ in range(8))


def _landline(rng: random.Random) -> str:
    return rng.choice(["010", "021", "020"]) + rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(7))


def demo_customers(count: int = 40, seed: int = 800, today: date | None = None) -> list[DemoCustomer]:
    """``count`` customers: three quarters Chinese, a quarter English-speaking; VIPs; every product line;
    one in eight with an open complaint; one in six a recent phone buyer (cross-sell); distinct names, each
    title agreeing with the person's sex and given name."""
    rng = random.Random(seed)
    today = today or date.today()
    used: set[str] = set()
    out: list[DemoCustomer] = []
    for i in range(count):
        number = _mobile(rng) if i % 5 else _landline(rng)
        while number in used:
            number = _mobile(rng)
        used.add(number)
        english = i % 4 == 3
        if english:
            family, given, title, sex = _EN[(i // 4) % len(_EN)]
            language, cnam = "en", f"{given} {family}"
        else:
            sex = "male" if rng.random() < 0.5 else "female"
            names = _ZH_GIVEN[sex]
            family, given = _ZH_FAMILY[i % len(_ZH_FAMILY)], names[(i * 7 + i // len(_ZH_FAMILY)) % len(names)]
            title, language = ZH_TITLE[sex], "zh"
            cnam = rng.choice(["", "", "WIRELESS CALLER", family])
        # product lines: one line routes straight to its queue, two or office-only go through the IVR
        lines = [("appliances",), ("mobile",), ("appliances",), ("mobile",), ("office",), ("appliances", "mobile")][i % 6]
        complaint = _COMPLAINTS[(i // 8) % len(_COMPLAINTS)] if i % 8 == 5 else None
        bought = []
        for line in lines:
            model, age = rng.choice(_MODELS[line]), rng.randrange(5, 900)
            if line in _RECENT_MODELS and (i % 6 == 1 or (complaint and "微波炉" in complaint)):
                model, age = _RECENT_MODELS[line], 3 + i % 20  # a recent buyer: the cross-sell rules match
            bought.append(f"{line}:{model}:{(today - timedelta(days=age)).isoformat()}")
        products = ";".join(bought)
        complaint_line = None if complaint is None else ("mobile" if "手机" in complaint else lines[0])
        out.append(DemoCustomer(
            fields={"family_name": family, "given_name": given, "title": title, "language": language,
                    "vip": "yes" if i % 7 == 2 else "no", "phones": number, "products": products},
            caller_number=number, caller_name=cnam, complaint=complaint, complaint_line=complaint_line, sex=sex))
    return out


#: Share of the line's calls each skill group gets in the demo traffic (known callers by product,
#: unknown callers by IVR digit, complaints by history): a planning figure for the staffing.
QUEUE_SHARE = {"mobile": 0.4, "appliances": 0.4, "complaints": 0.2}
#: Busiest hour's share of the day in the simulated 800 line's profile (9-10 and 14-15).
PEAK_HOUR_SHARE = 11 / 94


def agents_per_queue(calls_per_day: float, aht_s: float, answer_s: float) -> dict[str, int]:
    """Agents each queue needs in the busiest hour (Erlang C, 80 % answered within 20 s), at least two."""
    sizing = {}
    for queue, share in QUEUE_SHARE.items():
        traffic = calls_per_day * PEAK_HOUR_SHARE * share * (aht_s + answer_s) / 3600.0
        needed = agents_required(traffic, aht_s + answer_s, 0.8, 20.0).agents if traffic > 0 else 0
        sizing[queue] = max(2, needed)
    return sizing


_AGENT_NAMES = ("李娜", "陈杰", "赵敏", "刘洋", "孙丽", "周强", "吴芳", "郑凯", "王磊", "冯雪", "Emma", "Leo",
                "何静", "高远", "林涛", "罗敏", "梁晨", "宋佳", "唐宁", "韩梅", "许诺", "邓超", "曹阳", "彭程")


def roster(calls_per_day: float, *, aht_s: float = 60.0, answer_s: float = 2.0) -> Roster:
    """The demo shift: per queue, one *featured* agent for a human (``mobile1``, ``appliances1``,
    ``complaints1``) plus simulated colleagues sized by Erlang C for the volume."""
    sizing = agents_per_queue(calls_per_day, aht_s, answer_s)
    agents: list[DemoAgent] = []
    n = 0
    for queue, base in GROUPS.items():
        for k in range(1, sizing[queue] + 2):  # +1: the featured agent's long rings and talks
            name = _AGENT_NAMES[n % len(_AGENT_NAMES)]
            n += 1
            agents.append(DemoAgent(f"{queue}{k}", name, f"PJSIP/{base + k}", queue,
                                    language="en" if name.isascii() else "zh", featured=k == 1))
    return Roster(tuple(agents), sizing=sizing)
