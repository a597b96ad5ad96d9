"""Search tokens for Chinese and English text. Pure.

Both databases index the same token string (``kb_articles.search_text``), so search behaves
alike on SQLite and PostgreSQL:

- CJK runs (Han, kana, Hangul) become overlapping bigrams (``退货政策`` -> ``退货 货政 政策``);
  a lone CJK character stays a unigram. Chinese has no spaces and 2-character words are the
  common case, which FTS5's trigram tokenizer cannot find.
- Other letters and digits become lower-cased words (NFKC first: full-width ``ＡＢＣ１`` -> ``abc1``).
- Everything else separates tokens, so tokens never hold quotes or query operators.
"""

from __future__ import annotations

import re
import unicodedata

#: Longest text indexed per article (characters); beyond this only the title and tags count.
MAX_INDEXED_CHARS = 200_000

_CJK = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # extensions B..G
)
_RUN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)", re.UNICODE)


def tokens(text: str) -> list[str]:
    """The search tokens of ``text`` in order (duplicates kept)."""
    text = unicodedata.normalize("NFKC", text[:MAX_INDEXED_CHARS]).lower()
    out: list[str] = []
    for cjk, word in _RUN.findall(text):
        if cjk:
            if len(cjk) == 1:
                out.append(cjk)
            else:
                out.extend(cjk[i : i + 2] for i in range(len(cjk) - 1))
        elif word:
            out.append(word)
    return out


def search_text(*parts: str) -> str:
    """The indexed token string of an article's title, tags and body."""
    return " ".join(t for part in parts for t in tokens(part))


def query_terms(query: str, limit: int = 32) -> list[str]:
    """Distinct tokens of a search query, in order, at most ``limit``."""
    seen: dict[str, None] = {}
    for t in tokens(query):
        seen.setdefault(t, None)
        if len(seen) >= limit:
            break
    return list(seen)
