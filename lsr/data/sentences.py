"""The one sentence splitter: the oracle's rationale lines, the schema's line count, AS-ES's segments and
ROUGE-Lsum's one-sentence-a-line layout all cut text here, so they can never disagree on where a sentence ends.

The rule: existing line breaks are kept, and a line is cut after . ! ? (with any closing quotes or brackets, which
stay with their sentence) when white space and a capital letter, a digit or an opening quote follow. A piece with
no letter or digit (a stray dash) is not a sentence. It is a punctuation rule, not nltk's Punkt, which needs a
downloaded model: abbreviations such as "U.S. officials" are split now and then, which moves ROUGE-Lsum by
hundredths of a point, the same for every model.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"([.!?][\"'\u2019\u201d)\]]*)\s+(?=[\"'\u2018\u201c(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, in order, stripped."""
    sentences: list[str] = []
    for line in text.splitlines():
        for part in _SENTENCE_END.sub("\\1\n", line).split("\n"):
            part = part.strip()
            if any(c.isalnum() for c in part):
                sentences.append(part)
    return sentences
