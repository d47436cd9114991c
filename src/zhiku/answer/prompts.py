"""Prompt templates are files in the package (``resources/prompts/<task>.<part>.<lang>.txt``).

They are data: the answer step receives them as a ``Template`` and fills ``{placeholders}``.
Their hashes go into evaluation snapshots, so a prompt edit shows up as a change.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..backends.generator import Message, _is_cjk

TASKS = ("answer", "rewrite", "rerank", "judge", "judge_pair", "synth")
LANGS = ("zh", "en")

REFUSAL = {"zh": "资料中未提及。", "en": "The knowledge base does not say."}


@dataclass(frozen=True)
class Template:
    task: str
    lang: str
    system: str
    user: str

    def messages(self, **values: str) -> list[Message]:
        return [Message("system", self.system), Message("user", self.user.format(**values))]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.system}\0{self.user}".encode()).hexdigest()


@lru_cache(maxsize=None)
def template(task: str, lang: str) -> Template:
    if task not in TASKS or lang not in LANGS:
        raise ValueError(f"no prompt template {task}.{lang}")
    folder = resources.files("zhiku.resources").joinpath("prompts")
    read = lambda part: folder.joinpath(f"{task}.{part}.{lang}.txt").read_text(encoding="utf-8").strip()  # noqa: E731
    return Template(task, lang, read("system"), read("user"))


def template_hashes() -> dict[str, str]:
    return {f"{t}.{lang}": template(t, lang).sha256 for t in TASKS for lang in LANGS}


def language_of(text: str) -> str:
    """zh when the question has Chinese characters in it, else en (answers follow the question)."""
    return "zh" if any(_is_cjk(ch) for ch in text) else "en"
