"""Continuous batching for decoder-only LMs (`llmtool serve`): sequences decoded together one step at a time over
one KV cache, new ones joining at step boundaries and finished ones leaving at once.

Each sequence gets the tokens `generation.generate` gives its prompt alone:
- a joiner's prompt is prefilled (with the other joiners of that step, left-padded) and numbered from its first
  real token as model.generate numbers positions (the attention mask's running sum); each step continues there;
- its cache rows join the running cache padded on the left to the same width (the padding is masked out, so
  attention never sees it); columns no sequence needs any more are dropped when sequences leave;
- its next token is the argmax of the float32 logits (greedy), or generation's seeded draw (`sample_tokens`) from
  its own uniform stream (`row_uniforms`) after its own temperature and top-p warpers (transformers').
So batching changes speed, not tokens, up to float round-off between batch shapes (as for `generate`'s batches).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from llmtool.generation import sample_tokens
from llmtool.models import LoadedModel
from llmtool.tasks import CAUSAL_LM


@dataclass(eq=False)
class Sequence:
    """One generated sequence: its prompt's ids, how many new tokens it may take, the tokens it ends at (none of
    them kept), and for a sampled one its warpers and draws (a uniform in (0, 1] per new token)."""

    prompt: list[int]
    budget: int
    end_ids: frozenset[int]
    warpers: list = field(default_factory=list)
    uniforms: Any = None  # a 1-D tensor of `budget` draws; None: greedy
    owner: Any = None  # whoever asked for it (a served request's choice)
    ids: list[int] = field(default_factory=list)  # its new tokens so far
    finish: str | None = None  # "stop" (an end token) or "length" (its budget), once done


def supports_step_decoding(lm: LoadedModel) -> bool:
    """Whether `RunningBatch` can decode this model: a decoder-only model whose cache is plain full-attention
    layers (no sliding windows or recurrent state, whose rows could not be padded and merged) and which takes
    position ids."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if lm.task != CAUSAL_LM or "position_ids" not in inspect.signature(lm.model.forward).parameters:
        return False
    cache = DynamicCache(config=lm.model.config)
    return all(type(layer) is DynamicLayer for layer in cache.layers)


class RunningBatch:
    """The sequences being decoded, their KV cache, attention mask (1 for real tokens; padding on the left), next
    positions and last tokens, one row each in the order of `sequences`."""

    def __init__(self, lm: LoadedModel):
        self.lm = lm
        self.sequences: list[Sequence] = []
        self.cache = self.mask = self.positions = self.last = None
        self.padded = False  # whether the mask has any padding (model.generate passes no mask when it has none)
        parameters = inspect.signature(lm.model.forward).parameters
        # transformers renamed past_key_values to cache (5.x); either is the same object, filled in place
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self.keep_last_logits = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}

    def __len__(self) -> int:
        return len(self.sequences)

    def step(self, joiners: list[Sequence]) -> list[Sequence]:
        """A new token for every running sequence and the first for each joiner; the sequences that finished
        (at an end token or their budget) have left the batch. Returns every sequence that took part, in order."""
        import torch

        scores = []
        with torch.inference_mode():
            if self.sequences:
                scores.append(self._decode())
            if joiners:
                scores.append(self._prefill(joiners))
            everyone = self.sequences  # joiners were merged at the end
            tokens = self._choose(torch.cat(scores), everyone).tolist()
        self.last = torch.tensor(tokens, device=self.lm.device)
        for sequence, token in zip(everyone, tokens):
            if token in sequence.end_ids:
                sequence.finish = "stop"
            else:
                sequence.ids.append(token)
                if len(sequence.ids) >= sequence.budget:
                    sequence.finish = "length"
        self.remove([s for s in everyone if s.finish])
        return everyone

    def remove(self, leaving: list[Sequence]) -> None:
        """Take sequences out of the batch (finished, or no longer wanted), and the cache columns no one needs."""
        import torch

        if not leaving:
            return
        gone = {id(s) for s in leaving}
        keep = [i for i, s in enumerate(self.sequences) if id(s) not in gone]
        self.sequences = [self.sequences[i] for i in keep]
        if not keep:
            self.cache = self.mask = self.positions = self.last = None
            return
        index = torch.tensor(keep, device=self.lm.device)
        mask = self.mask[index]
        lead = int((mask.cumsum(dim=1) == 0).sum(dim=1).min())  # padding columns that every row still has
        self.mask = mask[:, lead:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, lead:]
            layer.values = layer.values[index, :, lead:]
        self.positions, self.last = self.positions[index], self.last[index]
        self.padded = bool((self.mask == 0).any())

    def _forward(self, ids, mask, positions, cache):
        outputs = self.lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                **{self.cache_argument: cache}, **self.keep_last_logits)
        return outputs.logits[:, -1].float()  # model.generate's scores are float32 whatever the model's dtype

    def _decode(self):
        """One step of the running sequences: each one's last token in, the next token's scores out."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.sequences), 1))], dim=1)
        scores = self._forward(self.last[:, None], self.mask if self.padded else None, self.positions[:, None],
                               self.cache)
        self.positions = self.positions + 1
        return scores

    def _prefill(self, joiners: list[Sequence]):
        """The joiners' prompts run together, left-padded, their cache merged into the batch's; their first
        token's scores out."""
        import torch
        from transformers import DynamicCache

        device, pad = self.lm.device, self.lm.tokenizer.pad_token_id
        width = max(len(s.prompt) for s in joiners)
        ids = torch.tensor([[pad] * (width - len(s.prompt)) + s.prompt for s in joiners], device=device)
        mask = torch.tensor([[0] * (width - len(s.prompt)) + [1] * len(s.prompt) for s in joiners], device=device)
        positions = (mask.cumsum(dim=1) - 1).masked_fill_(mask == 0, 0)  # as model.generate numbers them
        padded = width > min(len(s.prompt) for s in joiners)
        cache = DynamicCache(config=self.lm.model.config)
        scores = self._forward(ids, mask if padded else None, positions, cache)
        self._merge(joiners, cache, mask, positions[:, -1] + 1, padded)
        return scores

    def _merge(self, joiners: list[Sequence], cache, mask, next_positions, padded: bool) -> None:
        import torch
        from torch.nn.functional import pad

        if not self.sequences:
            self.sequences, self.cache, self.mask, self.positions = list(joiners), cache, mask, next_positions
            self.padded = padded
            return
        ours, theirs = self.mask.shape[1], mask.shape[1]
        width = max(ours, theirs)
        for mine, new in zip(self.cache.layers, cache.layers):  # (rows, heads, columns, head width): pad columns
            mine.keys = torch.cat([pad(mine.keys, (0, 0, width - ours, 0)), pad(new.keys, (0, 0, width - theirs, 0))])
            mine.values = torch.cat([pad(mine.values, (0, 0, width - ours, 0)),
                                     pad(new.values, (0, 0, width - theirs, 0))])
        self.mask = torch.cat([pad(self.mask, (width - ours, 0)), pad(mask, (width - theirs, 0))])
        self.positions = torch.cat([self.positions, next_positions])
        self.sequences = self.sequences + list(joiners)
        self.padded = bool((self.mask == 0).any())

    def _choose(self, scores, sequences: list[Sequence]):
        """Each row's next token: the argmax, or for a sampled sequence its seeded draw after its warpers (rows
        that share a list of warpers are warped and drawn together)."""
        import torch

        tokens = scores.argmax(dim=-1)
        groups: dict[int, list[int]] = {}
        for row, sequence in enumerate(sequences):
            if sequence.uniforms is not None:
                groups.setdefault(id(sequence.warpers), []).append(row)
        for rows in groups.values():
            warped = scores[rows]
            for warper in sequences[rows[0]].warpers:
                warped = warper(None, warped)
            draws = torch.stack([sequences[r].uniforms[len(sequences[r].ids)] for r in rows])[:, None]
            tokens[rows] = sample_tokens(warped, draws.to(scores.device))[:, 0]
        return tokens
