"""Input rules shared by the workflow's data sets and the ``instruct-pt-synthesize`` CLI.

Both read a user's raw texts through :func:`instruct_pt.data.sources.prepare_dataset`, which applies
these rules to every raw text (``raw_general``, ``raw_biomedicine``, ``raw_finance``):

* an empty or whitespace-only text is dropped and counted (``empty_text``);
* a text that contains one of the synthesizer protocol's markers (:data:`protocol.MARKERS`:
  ``<s>``, ``</s>``, ``<CON>``, ``</CON>``, ``<QUE>``, ``<ANS>``, ``</END>``) is kept with every
  marker escaped by :func:`escape_markers` and counted (``escaped_markers``), so that neither a
  synthesizer prompt nor a pre-training text holds a marker the user did not mean as one
  (``</s>`` would otherwise become a real end-of-sequence token). See docs/deviations.md.

Over-long texts are kept whole; synthesis cuts them inside the prompt's context framing and counts
them (``truncated_texts``, :func:`instruct_pt.synthesis.multi_round.synthesize_shard`).
"""

from __future__ import annotations

import re

from instruct_pt.synthesis.protocol import MARKERS

# A marker starts with "<" and holds no other "<" or space; "<" followed by the rest of a marker.
_MARKER_RE = re.compile(
    "<(?=(?:" + "|".join(re.escape(m[1:]) for m in sorted(MARKERS, key=len, reverse=True)) + "))"
)
ESCAPE = "< "  # what the "<" of a marker becomes: "</s>" -> "< /s>", "<QUE>" -> "< QUE>"


def has_marker(text: str) -> bool:
    """Whether ``text`` holds one of the protocol's markers."""
    return _MARKER_RE.search(text) is not None


def escape_markers(text: str) -> tuple[str, int]:
    """``text`` with a space after the ``"<"`` of every protocol marker, and how many there were.

    The result holds no marker (every marker has a single ``"<"``, the first character, and no
    space, so no marker can start at an escaped ``"<"`` or reach across one), all other bytes are
    unchanged, and a text without markers is returned as it is.
    """
    return _MARKER_RE.subn(ESCAPE, text)


def encodable(text: str) -> bool:
    """False for a text with lone surrogates (from a JSON ``"\\ud800"`` escape): no UTF-8 file
    can hold it, so such a text is dropped and counted (``invalid_unicode_text``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unprepared(text: str) -> str | None:
    """Why ``text`` could not have come out of ``prepare_dataset`` (None if it could): readers of
    the workflow's own raw files (``split_corpus``) refuse such a text, naming file and line."""
    if not text.strip():
        return "an empty or blank text"
    if not encodable(text):
        return "a text with lone surrogates (not UTF-8)"
    if has_marker(text):
        return "a text with an unescaped protocol marker"
    return None
