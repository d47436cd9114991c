"""Chinese/English word segmentation for the lexical index (rjieba = jieba-rs, dictionary bundled).

Documents are cut in search mode (whole words plus their sub-words) so that both
"上海交通大学" and "交通" find the same passage. Queries drop stopwords. English is
lower-cased; full-width forms are folded (NFKC). A user dictionary keeps domain terms whole.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError

log = logging.getLogger(__name__)

_SEPARATOR = re.compile(r"[\W_]+")  # what SQLite's unicode61 tokenizer splits on: one term = one FTS token
_DEFAULT_USER_FREQ = 100_000  # high enough that jieba keeps the word whole


def _stopwords() -> frozenset[str]:
    text = resources.files("zhiku.resources").joinpath("stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


class Segmenter:
    """Owns one rjieba instance (user words are per instance, not global)."""

    def __init__(self, user_dict: Path | None = None) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()
        self._stop = _stopwords()
        self.user_words: tuple[str, ...] = ()
        if user_dict is not None and user_dict.exists():
            self.user_words = tuple(self._load_user_dict(user_dict))

    def _load_user_dict(self, path: Path) -> Iterable[str]:
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read user dictionary {path}: {exc}",
                              "save it as UTF-8 text, one 'word [freq]' per line") from exc
        for n, line in enumerate(lines, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            freq = _DEFAULT_USER_FREQ
            if len(parts) > 1:
                if not parts[1].isdigit():
                    raise ConfigError(f"{path}:{n}: frequency {parts[1]!r} is not a whole number",
                                      "write 'word' or 'word 1000' on each line")
                freq = int(parts[1])
            word = normalise(parts[0])
            self._jieba.add_word(word, freq, parts[2] if len(parts) > 2 else None)
            yield word

    def doc_terms(self, text: str) -> list[str]:
        """All terms of a document, in order, sub-words included."""
        out = []
        for token in self._jieba.cut_for_search(normalise(text)):
            out.extend(p for p in _SEPARATOR.split(token) if p)
        return out

    def query_terms(self, text: str) -> list[str]:
        """Distinct content terms of a query, in order (stopwords dropped unless nothing remains)."""
        terms = list(dict.fromkeys(self.doc_terms(text)))
        content = [t for t in terms if t not in self._stop]
        return content or terms


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()

