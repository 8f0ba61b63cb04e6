"""The sentiment word list for the tokenizer's lexicon features (``TokenizerConfig.lexicon``) and
the English lexicon prior: VADER-derived (MIT; the notice and how it was derived head the data
file ``lexicon-vader-3.3.2.txt`` beside this module). ``NAME`` is stored in every artifact, so a
model trained with one word list is never scored with another.
"""

from __future__ import annotations

from pathlib import Path

NAME = "vader-3.3.2"


def _load() -> dict[int, str]:
    words: dict[int, str] = {}
    for line in (Path(__file__).with_name(f"lexicon-{NAME}.txt")).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            valence, _, text = line.partition("\t")
            words[int(valence)] = text
    return words


# valence bucket (-3 .. 3) -> words (space-separated)
WORDS_BY_VALENCE = _load()
