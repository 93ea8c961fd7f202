"""Masked-LM masks: which tokens an example hides, drawn from a random stream of its own.

BERT's rule, as transformers' DataCollatorForLanguageModeling applies it: each token that is not special is
chosen with probability `probability` (with whole-word masking, each word's first token is, and the choice
covers the word); of the chosen tokens 80% become the mask token, 10% a random token and 10% stay as they are;
the loss is over the chosen tokens. For one example and one generator the draws are those of transformers'
`numpy_mask_tokens` (tested). transformers draws one stream for a whole padded batch, so a mask would depend on
which batch, which row and which width an example landed in; here each example draws from a generator seeded by
(run seed, epoch, example index), so its mask is the same whichever process or batch position it lands in, and a
resumed run draws the masks of the run it continues. Validation examples draw from a stream without an epoch:
the same masks at every evaluation, so eval_loss is comparable from step to step. (transformers' whole-word mode
also finds words by character offsets, which joins punctuation to the word before, and drops the 80/10/10 rule;
here a word is what the tokenizer's word_ids say, a WordPiece word-start token and its ## continuations.)
"""

from __future__ import annotations

from dataclasses import dataclass

from llmtool.errors import LlmtoolError

MASK_SHARE = 0.8  # of the chosen tokens: replaced by the mask token ...
RANDOM_SHARE = 0.1  # ... by a random token; the rest (0.1) are kept as they are
# The stream of validation masks: in place of an epoch, a number no epoch reaches.
VALIDATION_STREAM = 2**32
NOT_A_WORD = -1  # the word id of a special token: never chosen


@dataclass(frozen=True)
class Masking:
    """The masks of one run: the tokenizer's mask token and vocabulary, the rule's settings and the run's seed."""

    mask_id: int
    vocab_size: int  # random replacements are drawn from the whole vocabulary, as transformers draws them
    special_ids: tuple[int, ...]
    probability: float = 0.15
    whole_words: bool = False
    seed: int = 0

    def generator(self, index: int, epoch: int | None):
        """The random stream of example `index` in `epoch` (None: the fixed validation stream)."""
        import numpy as np

        return np.random.default_rng([self.seed, VALIDATION_STREAM if epoch is None else epoch, index])

    def apply(self, input_ids: list[int], word_ids: list[int], index: int, epoch: int | None = None):
        """(input_ids with the mask applied, labels: the original id where chosen, else -100) of one example."""
        import numpy as np

        ids, words = np.array(input_ids, dtype=np.int64), np.array(word_ids, dtype=np.int64)
        rng = self.generator(index, epoch)
        candidates = (words != NOT_A_WORD) & ~np.isin(ids, self.special_ids)
        if self.whole_words:
            starts = candidates & (words != np.concatenate(([NOT_A_WORD], words[:-1])))
            picked = np.zeros(words.max(initial=0) + 1, dtype=bool)
            picked[words[rng.binomial(1, starts * self.probability).astype(bool)]] = True
            chosen = candidates & picked[np.maximum(words, 0)]
        else:
            chosen = rng.binomial(1, candidates * self.probability).astype(bool)
        labels = np.where(chosen, ids, -100)
        replaced = rng.binomial(1, MASK_SHARE, size=ids.shape).astype(bool) & chosen
        ids[replaced] = self.mask_id
        randomised = (rng.binomial(1, RANDOM_SHARE / (1 - MASK_SHARE), size=ids.shape).astype(bool) & chosen
                      & ~replaced)
        ids[randomised] = rng.integers(low=0, high=self.vocab_size, size=np.count_nonzero(randomised),
                                       dtype=np.int64)
        return ids.tolist(), labels.tolist()


def masking_for(tokenizer, probability: float, whole_words: bool, seed: int) -> Masking:
    """The run's Masking for `tokenizer`, which must have a mask token."""
    if tokenizer.mask_token_id is None:
        raise LlmtoolError("the tokenizer has no mask token, which masked-lm needs (BERT's is [MASK]); train from "
                           "a BERT or DistilBERT config, or start from a model made for masked LM")
    return Masking(mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                   special_ids=tuple(sorted(set(tokenizer.all_special_ids))), probability=probability,
                   whole_words=whole_words, seed=seed)


def word_ids(encoding, index: int, tokenizer) -> list[int]:
    """Each token's word in text `index` of a batch encoding (NOT_A_WORD for special tokens): a fast tokenizer's
    word_ids (WordPiece: a word-start token and its ## continuations); with a slow one, which has none, each token
    is a word of its own (whole-word masking asks for a fast tokenizer: recipe_data.masking)."""
    if tokenizer.is_fast:
        return [NOT_A_WORD if word is None else word for word in encoding.word_ids(index)]
    special = set(tokenizer.all_special_ids)
    return [NOT_A_WORD if token in special else n for n, token in enumerate(encoding["input_ids"][index])]
