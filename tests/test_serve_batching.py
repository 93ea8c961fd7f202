"""The continuous batch under `llmtool serve` (llmtool.batching): sequences that join a running batch at step
boundaries, with other prompt lengths and budgets, and leave it part way, get exactly the tokens `generate` gives
each prompt alone: greedy, and sampled with their own seed, temperature and top-p."""

import random

import pytest

from llmtool import batching, generation, models
from llmtool.generation import GenerationSettings

from conftest import CORPUS


@pytest.fixture(scope="module")
def lm(tiny_gpt2):
    loaded = models.load_model(str(tiny_gpt2), allowed_tasks=("causal-lm",), device="cpu")
    generation.prepare_tokenizer(loaded)
    return loaded


@pytest.fixture(scope="module")
def prompts(lm):
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [" ".join(lines[i:i + 1 + i % 4])[:15 + 17 * i % 150] for i in range(14)]
    return lm.tokenizer(texts)["input_ids"]


def budget(i: int) -> int:
    return 3 + (7 * i) % 24


def sampling(i: int) -> dict:
    return {"seed": 100 + i, "temperature": 0.6 + 0.2 * (i % 3), "top_p": 0.9 if i % 2 else None}


def alone(lm, prompt, new_tokens, seed=None, temperature=1.0, top_p=None):
    """What `generate` gives the prompt alone (its sequence 0; `seed` None: greedy)."""
    settings = GenerationSettings(max_new_tokens=new_tokens, do_sample=seed is not None, temperature=temperature,
                                  top_p=top_p, seed=seed, batch_size=1)
    return generation.generate_ids(lm, [prompt], settings)[0][0]


def sequence(lm, prompt, new_tokens, seed=None, temperature=1.0, top_p=None):
    ends = frozenset(generation.end_ids(lm, GenerationSettings()))
    if seed is None:
        return batching.Sequence(prompt, new_tokens, ends)
    settings = GenerationSettings(temperature=temperature, top_p=top_p, do_sample=True)
    return batching.Sequence(prompt, new_tokens, ends, warpers=generation.sampling_warpers(settings),
                             uniforms=generation.row_uniforms([(seed, 0)], 1, new_tokens)[0])


def test_the_tiny_gpt2_decodes_step_by_step(lm):
    assert batching.supports_step_decoding(lm)


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "sampled"])
def test_sequences_joining_and_leaving_get_the_tokens_they_get_alone(lm, prompts, sampled):
    settings = [sampling(i) if sampled else {} for i in range(len(prompts))]
    expected = [alone(lm, p, budget(i), **settings[i]) for i, p in enumerate(prompts)]
    sequences = [sequence(lm, p, budget(i), **settings[i]) for i, p in enumerate(prompts)]
    batch, waiting, widest, steps = batching.RunningBatch(lm), list(sequences), 0, 0
    arrivals = random.Random(0)
    while waiting or len(batch):
        joining = waiting[:arrivals.randint(0, 3)]
        waiting = waiting[len(joining):]
        batch.step(joining)
        widest, steps = max(widest, len(batch)), steps + 1
    assert [s.ids for s in sequences] == expected
    assert all(s.finish == ("length" if len(s.ids) == budget(i) else "stop") for i, s in enumerate(sequences))
    assert widest >= 4 and steps < sum(budget(i) for i in range(len(prompts)))  # they did share steps


def test_a_sequence_taken_out_part_way_leaves_the_others_unchanged(lm, prompts):
    expected = [alone(lm, p, 20) for p in prompts[:4]]
    sequences = [sequence(lm, p, 20) for p in prompts[:4]]
    batch = batching.RunningBatch(lm)
    batch.step(sequences[:3])
    batch.step([])
    batch.remove([sequences[0]])  # a client gone: its row and the cache columns only it needed go
    batch.step([sequences[3]])
    while len(batch):
        batch.step([])
    assert [s.ids for s in sequences[1:]] == expected[1:]
    assert sequences[0].ids == expected[0][:2] and sequences[0].finish is None


def test_a_sequence_ends_at_its_end_token_which_it_does_not_keep(lm, prompts):
    ids = alone(lm, prompts[0], 30)
    ending = frozenset({ids[4]})  # as if the fifth token were the end of a turn
    expected = ids[:ids.index(ids[4])]
    ended = batching.Sequence(prompts[0], 30, ending)
    batch = batching.RunningBatch(lm)
    while ended.finish is None:
        batch.step([] if len(batch) else [ended])
    assert ended.ids == expected and ended.finish == "stop" and len(batch) == 0
