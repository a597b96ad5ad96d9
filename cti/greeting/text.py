"""What a personalized greeting says: pure functions from a customer's (untrusted) name to text.

Names come from imports, agents and callers, so they are attacker-controlled: every field is
NFKC-normalized, reduced to letters, combining marks and a few name punctuation characters,
whitespace-collapsed and capped before it reaches the text-to-speech engine.
"""

from __future__ import annotations

import unicodedata

from pypinyin import Style, lazy_pinyin

#: Longest name (family + given) that is ever spoken, in characters.
MAX_NAME_CHARS = 40
#: Longest title kept, in characters.
MAX_TITLE_CHARS = 10
LANGUAGES = ("zh", "en")

#: Punctuation that belongs in names (O'Brien, Smith-Jones, 阿依古丽·买买提); everything else is a separator.
_NAME_PUNCT = frozenset("'-.·‧")

#: Known titles, keyed by their normalized spelling: (Mandarin title, English title or "").
_TITLES: dict[str, tuple[str, str]] = {
    "mr": ("先生", "Mr."),
    "mister": ("先生", "Mr."),
    "ms": ("女士", "Ms."),
    "mrs": ("女士", "Mrs."),
    "miss": ("小姐", "Miss"),
    "dr": ("博士", "Dr."),
    "doctor": ("博士", "Dr."),
    "prof": ("教授", "Prof."),
    "professor": ("教授", "Prof."),
    "先生": ("先生", "Mr."),
    "女士": ("女士", "Ms."),
    "小姐": ("小姐", "Ms."),
    "太太": ("太太", "Mrs."),
    "夫人": ("夫人", "Mrs."),
    "博士": ("博士", "Dr."),
    "教授": ("教授", "Prof."),
    "医生": ("医生", "Dr."),
}

#: Surnames whose reading differs from the common reading of the character (pypinyin has no surname mode).
_SURNAME_PINYIN: dict[str, str] = {
    "单": "Shan", "曾": "Zeng", "解": "Xie", "仇": "Qiu", "朴": "Piao", "区": "Ou", "查": "Zha",
    "盖": "Ge", "乐": "Yue", "华": "Hua", "任": "Ren", "万": "Wan", "尉": "Yu", "缪": "Miao",
    "覃": "Qin", "翟": "Zhai", "黑": "He", "种": "Chong", "秘": "Bi", "员": "Yun", "长孙": "Zhangsun",
    "尉迟": "Yuchi", "单于": "Chanyu", "万俟": "Moqi", "重": "Chong", "召": "Shao", "纪": "Ji",
}


def clean_field(value: object, limit: int = MAX_NAME_CHARS) -> str:
    """One name field made safe to speak: letters, marks and name punctuation, single spaces, capped."""
    if not isinstance(value, str):
        return ""
    text = unicodedata.normalize("NFKC", value[: limit * 8])
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "LM" or ch in _NAME_PUNCT:
            out.append(ch)
        elif cat[0] in "CZ" and cat not in ("Cf", "Cn", "Co", "Cs"):
            out.append(" ")  # control characters, spaces and separators split words
        elif cat[0] in "PS":
            out.append(" ")
        # format, unassigned, private-use and surrogate code points vanish; digits too
    words = ("".join(out)).split()
    words = [w.strip("".join(_NAME_PUNCT)) for w in words]
    return " ".join(w for w in words if w)[:limit].strip()


def _is_cjk(text: str) -> bool:
    return any(unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH") for ch in text)


def _all_cjk(text: str) -> bool:
    return bool(text) and all(unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH") for ch in text)


def _romanize(name: str, surname: bool = False) -> str:
    """Han characters spelled in pinyin (English voices cannot read them); other words kept."""
    if not _is_cjk(name):
        return name
    if surname:
        for size in (2, 1):
            head = name[:size]
            if head in _SURNAME_PINYIN:
                rest = _romanize(name[size:]) if name[size:] else ""
                return _SURNAME_PINYIN[head] + (rest.lower() if rest else "")
    words = []
    for word in name.split():
        words.append("".join(lazy_pinyin(word, style=Style.NORMAL, errors="ignore")).capitalize())
    return " ".join(w for w in words if w)


def _title_key(title: str) -> str:
    return title.lower().rstrip(".").strip()


def _full_name_zh(family: str, given: str) -> str:
    if _all_cjk(family.replace(" ", "")) and _all_cjk(given.replace(" ", "")):
        return family + given
    return " ".join(p for p in (given, family) if p)


def greeting_text(family_name: object, given_name: object, title: object, language: str) -> str | None:
    """The sentence that greets this customer, or None when there is no usable name (use the generic).

    zh: "王先生，您好" (family name + title) or "王伟，您好" (full name, no title);
    en: "Hello Mr. Smith" (title + family name) or "Hello Wei Wang" (given + family, no title).
    """
    family = clean_field(family_name)
    given = clean_field(given_name)
    title_raw = clean_field(title, MAX_TITLE_CHARS)
    if len(family) + len(given) + 1 > MAX_NAME_CHARS:
        given = given[: max(0, MAX_NAME_CHARS - len(family) - 1)].strip()
    if not family and not given:
        return None
    known = _TITLES.get(_title_key(title_raw))
    if language == "zh":
        if known:
            zh_title = known[0]
        elif _all_cjk(title_raw) and len(title_raw) <= 4:
            zh_title = title_raw  # 经理, 老师, ...
        else:
            zh_title = ""
        if family and zh_title:
            return f"{family}{zh_title}，您好"
        return f"{_full_name_zh(family, given)}，您好"
    if language == "en":
        en_title = known[1] if known else ""
        family_en = _romanize(family, surname=True)
        given_en = _romanize(given)
        if family_en and en_title:
            return f"Hello {en_title} {family_en}"
        name = " ".join(p for p in (given_en, family_en) if p)
        return f"Hello {name}" if name else None
    return None
