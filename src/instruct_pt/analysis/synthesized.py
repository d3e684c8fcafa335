"""The synthesized pairs that reach the pre-training corpora, read back from synthesis shards.

Both analyses of the synthesized data (quality, contamination) count only the pairs templify keeps:
pairs it drops (:func:`instruct_pt.synthesis.protocol.accept_pair`: an MC answer that is no option, a
malformed CoT pair; as the official code) are removed here and counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from instruct_pt.common import DataError, iter_jsonl
from instruct_pt.synthesis.protocol import accepted_pairs

SYNTH_KEYS = ("id", "text", "pairs")


def iter_synthesized(paths: list[str], not_templified: Counter | None = None) -> Iterator[dict]:
    """Synthesized records (``{"id", "text", "pairs", ...}``) with only the pairs that reach the
    pre-training corpora; the others are counted by reason in ``not_templified``.

    A record without ``id``/``text``/``pairs``, or whose ``pairs`` is not a list of objects,
    raises :class:`~instruct_pt.common.DataError` naming the file (and line or record).
    """
    for path in paths:
        for rec in iter_jsonl(path, SYNTH_KEYS):
            if not isinstance(rec["pairs"], list) or not all(
                isinstance(p, dict) for p in rec["pairs"]
            ):
                raise DataError(f"{path}: record {rec['id']!r}: 'pairs' must be a list of objects")
            kept = accepted_pairs(rec["pairs"], not_templified)
            rec["pairs"] = [rec["pairs"][i] for i, _ in kept]
            yield rec
