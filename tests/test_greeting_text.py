"""What personalized greetings say, and how hostile names are tamed (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.greeting.naming import SOUND_NAME_RE, content_key, is_customer_sound, sound_name
from cti.greeting.text import MAX_NAME_CHARS, clean_field, greeting_text


@pytest.mark.parametrize(
    ("family", "given_", "title", "lang", "expected"),
    [
        ("王", "伟", "先生", "zh", "王先生，您好"),
        ("王", "伟", "", "zh", "王伟，您好"),
        ("王", "伟", "Mr", "zh", "王先生，您好"),
        ("王", "伟", "Mr.", "zh", "王先生，您好"),
        ("李", "娜", "Ms", "zh", "李女士，您好"),
        ("李", "娜", "Mrs", "zh", "李女士，您好"),
        ("张", "三", "Dr", "zh", "张博士，您好"),
        ("王", "伟", "经理", "zh", "王经理，您好"),
        ("王", "", "", "zh", "王，您好"),
        ("Smith", "John", "Mr", "zh", "Smith先生，您好"),
        ("Smith", "John", "", "zh", "John Smith，您好"),
        ("Smith", "John", "Mr", "en", "Hello Mr. Smith"),
        ("Smith", "John", "mr.", "en", "Hello Mr. Smith"),
        ("Smith", "Jane", "Ms", "en", "Hello Ms. Smith"),
        ("Smith", "Jane", "Mrs", "en", "Hello Mrs. Smith"),
        ("Smith", "Jane", "Dr", "en", "Hello Dr. Smith"),
        ("Smith", "John", "先生", "en", "Hello Mr. Smith"),
        ("Smith", "Jane", "女士", "en", "Hello Ms. Smith"),
        ("Wang", "Wei", "", "en", "Hello Wei Wang"),
        ("Smith", "John", "Captain", "en", "Hello John Smith"),
        ("王", "伟", "", "en", "Hello Wei Wang"),
        ("王", "伟", "先生", "en", "Hello Mr. Wang"),
        ("单", "小明", "女士", "en", "Hello Ms. Shan"),
        ("O'Brien", "Jean-Luc", "Dr", "en", "Hello Dr. O'Brien"),
        ("Ｓｍｉｔｈ", "", "Ｍｒ", "en", "Hello Mr. Smith"),  # full-width letters (NFKC)
        ("  Smith \t", " John\n", " Mr ", "en", "Hello Mr. Smith"),
        ("", "", "先生", "zh", None),
        ("", "", "Mr", "en", None),
        ("   ", "\t", "", "en", None),
        (None, None, None, "zh", None),
        ("123", "!!!", "", "zh", None),
        ("王", "伟", "先生", "fr", None),
    ],
)
def test_greeting_text(family, given_, title, lang, expected):
    assert greeting_text(family, given_, title, lang) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "etc passwd"),
        ("-rf", "rf"),
        ("'\"; rm -rf / #", "rm rf"),
        ("王\r\nagi_network: yes", "王 agi network yes"),
        ("a\x00b", "a b"),
        ("\u202eevil\u200b", "evil"),  # bidi override and zero-width space vanish
        ("Jean-Luc", "Jean-Luc"),
        ("阿依古丽·买买提", "阿依古丽·买买提"),
        (b"bytes", ""),
        (42, ""),
    ],
)
def test_clean_field_keeps_only_name_characters(raw, expected):
    assert clean_field(raw) == expected


def test_huge_names_are_capped():
    text = greeting_text("A" * 10_000, "B" * 10_000, "Mr", "en")
    assert text == "Hello Mr. " + "A" * MAX_NAME_CHARS
    full = greeting_text("王" * 5_000, "伟" * 5_000, "", "zh")
    assert full is not None and len(full) <= MAX_NAME_CHARS + len("，您好")


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text(), st.sampled_from(["zh", "en"]))
def test_any_name_gives_short_printable_text_or_none(family, given_, title, lang):
    text = greeting_text(family, given_, title, lang)
    if text is None:
        return
    assert len(text) <= MAX_NAME_CHARS + 20
    assert text.isprintable() and "\0" not in text and "/" not in text


def test_sound_name_is_id_and_content_hash_never_the_name():
    name = sound_name(42, "Hello Mr. Smith", "en-us")
    assert name == f"greet-42-{content_key('Hello Mr. Smith', 'en-us')[:12]}"
    assert SOUND_NAME_RE.fullmatch(name)
    assert "smith" not in name.lower()
    assert is_customer_sound(name, 42) and not is_customer_sound(name, 4)


def test_sound_name_depends_on_text_and_voice():
    base = sound_name(1, "王先生，您好", "cmn")
    assert sound_name(1, "王先生，您好", "cmn") == base
    assert sound_name(1, "王女士，您好", "cmn") != base
    assert sound_name(1, "王先生，您好", "yue") != base
    assert sound_name(2, "王先生，您好", "cmn") != base


@pytest.mark.parametrize("bad", [-1, True, "1", 1.0, None, "../x"])
def test_sound_name_rejects_non_ids(bad):
    with pytest.raises(ValueError):
        sound_name(bad, "text", "cmn")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**63), st.text(), st.text(min_size=1, max_size=20))
def test_sound_names_are_always_safe_path_parts(customer_id, text, voice):
    assert SOUND_NAME_RE.fullmatch(sound_name(customer_id, text, voice))
