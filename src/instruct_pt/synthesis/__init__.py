"""Instruction synthesis: raw texts -> synthesized pairs -> instruction-augmented texts.

The synthesizer's exact I/O (``protocol``), its engines (``engines``), the corpus split
(``corpus_split``), multi-round synthesis of a shard (``multi_round``), the rule-based ablation
(``rule_based``), templify (``templify``, text assembly in ``templates``) and the vLLM vs
transformers check (``engine_check``).
"""
