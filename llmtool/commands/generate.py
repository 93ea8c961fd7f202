"""`llmtool generate`: continue prompts with a causal LM, or answer them with an encoder-decoder (T5) model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands.options import MODEL_OPTION_NAMES, BaseModelOption, DeviceOption, DtypeOption, NewHeadOption, TrustRemoteCodeOption
from llmtool.errors import UsageError


def generate(
    prompts: Annotated[Optional[list[str]], typer.Argument(help="Prompts; or use --file, or pipe them on stdin.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Prompts, one a line, or JSONL with a \"prompt\" field ('-' for stdin).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Local model directory or Hub id. (default: $LLMTOOL_MODEL, else gpt2)", show_default=False)] = None,
    task: Annotated[Optional[str], typer.Option(help="Override the task read from the config: causal-lm or seq2seq-lm.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="New tokens per prompt (takes precedence over --max-length).")] = None,
    max_length: Annotated[int, typer.Option(help="Total length, prompt included (encoder-decoder: output length).")] = 50,
    num_return_sequences: Annotated[int, typer.Option("--num-return-sequences", "-n", help="Sequences per prompt (needs sampling).")] = 1,
    do_sample: Annotated[Optional[bool], typer.Option("--do-sample/--greedy", help="Sample, or decode greedily. (default: greedy, unless --temperature, --top-k or --top-p is given)", show_default=False)] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; a value other than 1 turns sampling on.")] = 1.0,
    top_k: Annotated[Optional[int], typer.Option(help="Sample from the k most likely tokens.")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling: the smallest token set with this much probability, in (0, 1].")] = None,
    repetition_penalty: Annotated[Optional[float], typer.Option(help="Penalise repeated tokens (1.0 = none; 1.2 is typical).")] = None,
    no_repeat_ngram_size: Annotated[Optional[int], typer.Option(help="Never repeat an n-gram of this size.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: the same seed gives the same text.")] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts per forward pass (sorted by length, left-padded).")] = 8,
    block_words: Annotated[Optional[Path], typer.Option(help="File of words/phrases (one a line) that must never be generated.")] = None,
    block_default: Annotated[bool, typer.Option("--block-default", help="Also block llmtool's shipped list of offensive words.")] = False,
    stream: Annotated[bool, typer.Option(help="Print tokens as they are produced (one prompt).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON: prompts, generations, token counts, timing.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    new_head: NewHeadOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Generate text from prompts with a causal LM (GPT-2 style) or an encoder-decoder model (T5 style).

    Prompts come from the arguments, from --file, or from stdin, one a line. Output is the prompt followed by its continuation (for encoder-decoder models, the answer alone); --json gives a machine-readable record.

    Examples:

      llmtool generate "The quick brown fox" --temperature 0.7

      llmtool generate --model ./my-gpt2 --file prompts.txt --batch-size 16 --json

      llmtool generate --model t5-small "translate English to German: The house is wonderful."

      echo "Once upon a time" | llmtool generate --max-new-tokens 100 --stream --seed 1
    """
    from llmtool import generation, models
    from llmtool.tasks import CAUSAL_LM, SEQ2SEQ_LM
    from llmtool.commands._output import print_json

    settings = generation.GenerationSettings(
        max_new_tokens=max_new_tokens, max_length=max_length, num_return_sequences=num_return_sequences,
        do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
        repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size, seed=seed,
        batch_size=batch_size, block_words=generation.read_block_words(block_words, block_default),
    )
    settings.validate()
    if stream and json_output:
        raise UsageError("--stream and --json do not mix; choose one")
    texts = _collect_prompts(prompts, file)
    settings.validate(len(texts), streaming=stream)  # before anything reaches stdout

    model = model or models.default_generation_model()
    lm = models.load_model(
        model, task=task, allowed_tasks=(CAUSAL_LM, SEQ2SEQ_LM),
        verb="generate", device=device, dtype=dtype, trust_remote_code=trust_remote_code,
        allow_new_head=new_head, names=MODEL_OPTION_NAMES, base_model=base_model,
    )
    streamer = None
    if stream:
        from transformers import TextStreamer

        streamer = TextStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)

    def echo_prompt() -> None:  # a streamed continuation follows its prompt, once every check has passed
        sys.stdout.write(texts[0])
        sys.stdout.flush()

    report = generation.generate(lm, texts, settings, streamer=streamer,
                                 on_start=echo_prompt if stream and lm.task == CAUSAL_LM else None)
    if stream:
        return

    if json_output:
        print_json({
            "model": model,
            "task": lm.task,
            "results": [
                {"prompt": g.prompt, "prompt_tokens": g.prompt_tokens,
                 "generations": [{"text": t, "new_tokens": n} for t, n in zip(g.texts, g.new_tokens)]}
                for g in report.generations
            ],
            "timing": {"seconds": round(report.seconds, 4), "new_tokens": report.new_tokens,
                       "tokens_per_second": round(report.new_tokens / report.seconds, 2) if report.seconds else None},
        })
        return
    prefix_prompt = lm.task == CAUSAL_LM
    outputs = [(g.prompt if prefix_prompt else "") + text for g in report.generations for text in g.texts]
    typer.echo("\n\n".join(outputs) if len(outputs) > 1 else outputs[0])


def _collect_prompts(prompts: list[str] | None, file: Path | None) -> list[str]:
    from llmtool import generation

    if prompts and file:
        raise UsageError("give prompts as arguments or with --file, not both")
    if file is not None:
        if str(file) == "-":
            return generation.parse_prompts(read_stdin(), "stdin")
        return generation.read_prompts(file)
    if prompts:
        for i, prompt in enumerate(prompts, 1):
            if not prompt.strip():
                raise UsageError(f"prompt {i} is empty; give some text to continue")
        return list(prompts)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError('no prompt given; pass one (llmtool generate "Once upon a time"), --file, or stdin')
    return generation.parse_prompts(read_stdin(), "stdin")

