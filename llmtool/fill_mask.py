"""Fill-mask: a masked LM's most likely tokens for each mask token of a prompt, with their probabilities, as
transformers' fill-mask pipeline gives them (the same tokens, scores and filled-in sequences; tested), for
many prompts in length-sorted batches."""

from __future__ import annotations

from dataclasses import dataclass

from llmtool.data import sorted_batches
from llmtool.errors import LlmtoolError, SettingError
from llmtool.model_facts import position_limit
from llmtool.models import LoadedModel

DEFAULT_TOP_K = 5  # the pipeline's


@dataclass
class Fill:
    token: int
    token_str: str
    score: float  # the token's probability at the mask
    sequence: str  # the prompt with this token at the mask


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise SettingError(f"{{top_k}} must be at least 1 for fill-mask (got {top_k}): the fills shown per mask")


def encode_prompts(tokenizer, prompts: list[str], positions: int | None) -> list[list[int]]:
    """Each prompt's tokens, special tokens included; a prompt without the model's mask token, or past its
    positions, is one error that names it by number."""
    if tokenizer.mask_token is None:
        raise LlmtoolError("this model's tokenizer has no mask token, so there is nothing to fill")
    encoded = tokenizer(prompts, verbose=False)["input_ids"]
    for number, ids in enumerate(encoded, 1):
        if tokenizer.mask_token_id not in ids:
            raise LlmtoolError(f"prompt {number} has no {tokenizer.mask_token} token: write {tokenizer.mask_token} "
                               "where this model should fill in a token (its mask token)")
        if positions and len(ids) > positions:
            raise LlmtoolError(f"prompt {number} has {len(ids)} tokens, past the model's {positions} positions")
    return encoded


def fill_masks(lm: LoadedModel, prompts: list[str], top_k: int = DEFAULT_TOP_K,
               batch_size: int = 8) -> list[list[list[Fill]]]:
    """For each prompt, for each of its mask tokens in order, the `top_k` most likely tokens (at most the
    vocabulary), best first. As the pipeline does, a prompt with one mask gets sequences without special tokens;
    one with several, each sequence fills its own mask and keeps the others (special tokens shown)."""
    import torch

    check_top_k(top_k)
    tokenizer, model = lm.tokenizer, lm.model
    encoded = encode_prompts(tokenizer, prompts, position_limit(model.config))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[list[list[Fill]]] = [[] for _ in prompts]
    model.eval()
    with torch.inference_mode():
        for batch in sorted_batches([len(ids) for ids in encoded], batch_size):
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
                attention[row, :len(encoded[i])] = 1
            logits = model(input_ids=input_ids.to(lm.device), attention_mask=attention.to(lm.device)).logits
            for row, i in enumerate(batch):
                results[i] = _fills(tokenizer, encoded[i], logits[row, :len(encoded[i])].float().cpu(), top_k)
    return results


def _fills(tokenizer, ids: list[int], logits, top_k: int) -> list[list[Fill]]:
    """One prompt's fills from its logits: softmax at each mask, its top tokens, decoded as the pipeline does."""
    import torch

    positions = [p for p, token in enumerate(ids) if token == tokenizer.mask_token_id]
    scores, tokens = logits[positions].softmax(dim=-1).topk(min(top_k, logits.shape[-1]))
    single = len(positions) == 1
    fills = []
    for position, mask_scores, mask_tokens in zip(positions, scores.tolist(), tokens.tolist()):
        row = []
        for score, token in zip(mask_scores, mask_tokens):
            filled = torch.tensor(ids)
            filled[position] = token
            filled = filled[filled != tokenizer.pad_token_id] if tokenizer.pad_token_id is not None else filled
            row.append(Fill(token=token, token_str=tokenizer.decode([token]), score=score,
                            sequence=tokenizer.decode(filled.tolist(), skip_special_tokens=single)))
        fills.append(row)
    return fills
