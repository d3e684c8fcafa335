"""The training loss: next-token cross-entropy that never holds the logits of more than
`loss_chunk_tokens` tokens (`chunked_ce_sum`), and `LossModel`, a causal LM whose forward is it.

At paper scale (Llama3-8B, vocab 128,256, 16 x 4096 tokens per GPU) the full logits alone would
not fit a GPU; computed chunk by chunk under activation checkpointing they never exist at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from instruct_pt.training.batches import IGNORE


def _ce_sum(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module) -> torch.Tensor:
    """Summed fp32 cross-entropy of head(hidden) [n, V] against targets [n] (no IGNORE inside)."""
    logits = head(hidden)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def chunked_ce_sum(
    hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module, chunk_tokens: int
) -> torch.Tensor:
    """Summed next-token cross-entropy of `head` (the LM head) over final hidden states, without
    ever holding the logits of more than `chunk_tokens` tokens.

    hidden [..., H] and targets [...] are aligned (hidden[i] predicts targets[i]); targets equal
    to IGNORE are left out before the head runs. With 0 (or a chunk as large as the targets) the
    logits are computed at once; otherwise chunk by chunk, each under torch.utils.checkpoint so
    that neither its logits nor its fp32 copy are kept for backward: a chunk's logits exist only
    while it is computed, then again while its gradient is.
    """
    h = hidden.reshape(-1, hidden.size(-1))
    t = targets.reshape(-1)
    keep = t != IGNORE
    if not bool(keep.all()):
        h, t = h[keep], t[keep]
    n = t.numel()
    if chunk_tokens <= 0 or chunk_tokens >= n:
        # also n = 0: the head still runs (on no rows), so every parameter gets a (zero)
        # gradient and FSDP reduces the same tensors on every rank
        return _ce_sum(h, t, head)
    from torch.utils.checkpoint import checkpoint

    total = None
    for start in range(0, n, chunk_tokens):
        part = checkpoint(
            _ce_sum,
            h[start : start + chunk_tokens],
            t[start : start + chunk_tokens],
            head,
            use_reentrant=False,
        )
        total = part if total is None else total + part
    return total


class LossModel(torch.nn.Module):
    """A causal LM whose forward is the training loss: the decoder to the final hidden states,
    then the LM head and fp32 cross-entropy chunk by chunk (`chunked_ce_sum`).

    It is the FSDP root, so the head runs inside the root's forward (its weights gathered there,
    its gradients reduce-scattered with the root's) although it no longer runs in the model's own
    forward. Its state dict is the model's with the prefix `lm.`.
    """

    def __init__(self, lm, chunk_tokens: int):
        super().__init__()
        self.lm = lm
        self.chunk_tokens = chunk_tokens

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed CE of predicting labels[:, 1:] from input_ids (labels IGNORE = no loss)."""
        out = self.lm.get_decoder()(input_ids=input_ids, use_cache=False)
        hidden = out.last_hidden_state[:, :-1]
        return chunked_ce_sum(
            hidden, labels[:, 1:], self.lm.get_output_embeddings(), self.chunk_tokens
        )
