"""`llmtool generate`: continue prompts with a causal LM, answer them with an encoder-decoder (T5) model, or fill
in the mask tokens of a masked LM (BERT)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands._output import ResultsDisplay, note, writing_results
from llmtool.commands.options import (BaseModelOption, BlockDefaultOption, BlockWordsOption, DeviceOption,
                                      DoSampleOption, DtypeOption, ModelOption, NewHeadOption,
                                      RepetitionPenaltyOption, SeedOption, TemperatureOption, TopPOption,
                                      TrustRemoteCodeOption)
from llmtool.errors import Interrupted, LlmtoolError, UsageError
from llmtool.models import MODEL_ENV

SETTING_NAMES = {"greedy": "--greedy"}  # the off side of --do-sample
ENV_DEFAULTS = {"model": MODEL_ENV}


def generate(
    prompts: Annotated[Optional[list[str]], typer.Argument(help="Prompts; or use --file, or pipe them on stdin.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Prompts, one a line, or JSONL with a \"prompt\" field ('-' for stdin).")] = None,
    model: ModelOption = None,
    task: Annotated[Optional[str], typer.Option(help="Override the task read from the config: causal-lm, seq2seq-lm or masked-lm.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="New tokens per prompt (takes precedence over --max-length).")] = None,
    max_length: Annotated[int, typer.Option(help="Total length, prompt included (encoder-decoder: output length).")] = 50,
    num_return_sequences: Annotated[int, typer.Option("--num-return-sequences", "-n", help="Sequences per prompt (needs sampling).")] = 1,
    do_sample: DoSampleOption = None,
    temperature: TemperatureOption = 1.0,
    top_k: Annotated[Optional[int], typer.Option(help="Sample from the k most likely tokens; for a masked LM, the fills shown per mask (default 5).", show_default=False)] = None,
    top_p: TopPOption = None,
    repetition_penalty: RepetitionPenaltyOption = None,
    no_repeat_ngram_size: Annotated[Optional[int], typer.Option(help="Never repeat an n-gram of this size.")] = None,
    seed: SeedOption = None,
    batch_size: Annotated[int, typer.Option(help="Prompts per forward pass (sorted by length, left-padded).")] = 8,
    block_words: BlockWordsOption = None,
    block_default: BlockDefaultOption = False,
    stream: Annotated[bool, typer.Option(help="Print tokens as they are produced (one prompt).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON: prompts, generations, token counts, timing.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the results to this JSONL file (one --json record a prompt), each batch as it finishes.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="With --output: keep the results already in the file and generate for the prompts after them.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --output: replace a file that already holds results.")] = False,
    mix_settings: Annotated[bool, typer.Option("--mix-settings", help="With --resume: continue even though the kept results were made with another model or other generation settings (FILE.settings.json records where each set starts).")] = False,
    compile_decoder: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="Decode with a static KV cache and a compiled forward. (default: on CUDA when the run has enough decoding steps to repay the compile time, else off)", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    new_head: NewHeadOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Generate text from prompts with a causal LM (GPT-2 style) or an encoder-decoder model (T5 style), or fill in the mask tokens of a masked LM (BERT style).

    Prompts come from the arguments, from --file, or from stdin, one a line. Output is the prompt followed by its continuation (for encoder-decoder models, the answer alone); --json gives a machine-readable record. With --output, results go to a JSONL file as they are made, a file of any size is read as it is used, and --resume continues a stopped run. A masked LM prints, for each mask token of a prompt, its --top-k most likely tokens with their probabilities (as transformers' fill-mask pipeline gives them); the options that shape generated text do not apply to it and are refused.

    Examples:

      llmtool generate "The quick brown fox" --temperature 0.7

      llmtool generate --model ./my-gpt2 --file prompts.txt --batch-size 16 --json

      llmtool generate --model ./my-gpt2 --file prompts.jsonl --output results.jsonl --resume

      llmtool generate --model t5-small "translate English to German: The house is wonderful."

      echo "Once upon a time" | llmtool generate --max-new-tokens 100 --stream --seed 1

      llmtool generate --model runs/pretrain-bert "The cat sat on the [MASK]." --top-k 3 --json
    """
    from llmtool import fill_mask, generation, models
    from llmtool.tasks import CAUSAL_LM, MASKED_LM, SEQ2SEQ_LM

    settings = generation.GenerationSettings(
        max_new_tokens=max_new_tokens, max_length=max_length, num_return_sequences=num_return_sequences,
        do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
        repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size, seed=seed,
        batch_size=batch_size, block_words=generation.read_block_words(block_words, block_default),
    )
    settings.validate()
    _check_output_options(stream, json_output, output, resume, overwrite, mix_settings)
    prompts_in = _prompt_source(prompts, file)
    settings.validate(len(prompts_in), streaming=stream)  # before anything reaches stdout
    model = model or models.default_generation_model()
    if task == MASKED_LM or task is None and _is_masked_lm(model, trust_remote_code, base_model):
        unused = [flag for flag, given in (
            ("--max-new-tokens", max_new_tokens is not None), ("--max-length", max_length != settings.max_length),
            ("--num-return-sequences", num_return_sequences != 1), ("--do-sample/--greedy", do_sample is not None),
            ("--temperature", temperature != 1.0), ("--top-p", top_p is not None),
            ("--repetition-penalty", repetition_penalty is not None),
            ("--no-repeat-ngram-size", no_repeat_ngram_size is not None), ("--seed", seed is not None),
            ("--block-words", block_words is not None), ("--block-default", block_default), ("--stream", stream),
            ("--output", output is not None), ("--compile/--no-compile", compile_decoder is not None)) if given]
        if unused:
            raise UsageError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} for generating text, and "
                             f"model '{model}' is a masked LM, which fills in its mask tokens instead (--top-k fills "
                             f"each, --json); drop {'it' if len(unused) == 1 else 'them'}")
        if top_k is not None:
            fill_mask.check_top_k(top_k)
        lm = models.load_model(model, task=MASKED_LM, allowed_tasks=(MASKED_LM,), verb="generate", device=device,
                               dtype=dtype, trust_remote_code=trust_remote_code, allow_new_head=new_head,
                               base_model=base_model)
        _print_fills(model, lm, list(prompts_in), top_k, batch_size, json_output)
        return
    results = None
    if output is not None:
        from llmtool.results_file import ResultsFile

        results = ResultsFile(output, prompts_in, inputs={"prompt file": file, "block-words file": block_words},
                              overwrite=overwrite, resumable=True, resume=resume, mix_settings=mix_settings,
                              settings={"model": models.model_identity(model),
                                        "base_model": base_model and models.model_identity(base_model),
                                        **settings.text_settings()})
        if results.kept == len(prompts_in):
            results.close()
            if not quiet:
                note(f"all {results.kept} prompts already have results in {output}; nothing to do")
            return

    try:  # the output file stays claimed (locked) until it is closed, however the run ends
        lm = models.load_model(
            model, task=task, allowed_tasks=(CAUSAL_LM, SEQ2SEQ_LM),
            verb="generate", device=device, dtype=dtype, trust_remote_code=trust_remote_code,
            allow_new_head=new_head, base_model=base_model,
        )
        skip = results.kept if results is not None else 0
        todo = len(prompts_in) - skip
        compiled = generation.use_compiled_decoder(lm, settings, todo, compile_decoder)
        if compiled and compile_decoder is None and not quiet:
            note(f"compiling the decoder (static KV cache) for these {generation.decoding_steps(todo, settings):,} "
                  "decoding steps: the first batch waits for it; --no-compile turns it off")
        streamer = None
        if stream:
            from transformers import TextStreamer

            streamer = TextStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def echo_prompt() -> None:  # a streamed continuation follows its prompt, once every check has passed
            sys.stdout.write(next(iter(prompts_in)))
            sys.stdout.flush()

        if results is not None:
            sink = _FileSink(results)
        elif json_output:
            sink = _JsonSink(model, lm.task, compiled)
        elif stream:
            sink = _Sink()  # the streamer prints every token
        else:
            sink = _TextSink(prefix_prompt=lm.task == CAUSAL_LM)
        start = time.perf_counter()
        try:
            with writing_results(), ResultsDisplay("generating", total=todo, rate=True,
                                                   progress=not quiet and todo > settings.batch_size) as display:
                sink.display = display
                for g in generation.generate_stream(
                    lm, prompts_in, settings, skip=skip, compiled=compiled, streamer=streamer,
                    on_start=echo_prompt if stream and lm.task == CAUSAL_LM else None, on_batch=display.advance,
                ):
                    sink.add(g)
        except (LlmtoolError, KeyboardInterrupt) as err:
            raise _kept_so_far(err, results, sink.count, len(prompts_in)) from None
        seconds = time.perf_counter() - start
    finally:
        if results is not None:
            results.close()
    sink.finish(seconds)
    if results is not None and not quiet:
        rate = f", {sink.new_tokens / seconds:,.0f} tokens/s" if seconds else ""
        note(f"{sink.count} results written to {output} ({sink.new_tokens:,} new tokens{rate}"
              f"{', compiled decoder' if compiled else ''})")


def _is_masked_lm(model: str, trust_remote_code: bool, base_model: str | None) -> bool:
    """Whether the model's config says it is a masked LM (a BERT saved with its masked-LM head). A model whose
    config cannot be read is not known to be one: the text path checks its --output first, then reports the
    model's problem when it loads it."""
    from llmtool import models
    from llmtool.tasks import MASKED_LM

    try:
        config = models.model_config(model, trust_remote_code, base_model=base_model)
    except LlmtoolError:
        return False
    return models.infer_task(config) == MASKED_LM


def _print_fills(model: str, lm, prompts: list[str], top_k: int | None, batch_size: int, json_output: bool) -> None:
    """Each prompt's fills: as JSON, or the prompt and then a `token<TAB>score<TAB>sequence` line per fill (under a
    `mask N of M` line for each of several masks), a blank line between prompts."""
    from llmtool import fill_mask
    from llmtool.tasks import MASKED_LM

    fills = fill_mask.fill_masks(lm, prompts, fill_mask.DEFAULT_TOP_K if top_k is None else top_k, batch_size)
    if json_output:
        from dataclasses import asdict

        from llmtool.commands._output import print_json

        print_json({"model": model, "task": MASKED_LM, "results": [
            {"prompt": prompt, "masks": [[asdict(fill) for fill in mask] for mask in masks]}
            for prompt, masks in zip(prompts, fills)]})
        return
    blocks = []
    for prompt, masks in zip(prompts, fills):
        lines = [prompt]
        for number, mask in enumerate(masks, 1):
            lines += [f"mask {number} of {len(masks)}"] if len(masks) > 1 else []
            lines += [f"{fill.token_str}\t{fill.score:.4f}\t{fill.sequence}" for fill in mask]
        blocks.append("\n".join(lines))
    sys.stdout.write("\n\n".join(blocks) + "\n")


def _check_output_options(stream: bool, json_output: bool, output: Path | None, resume: bool,
                          overwrite: bool, mix_settings: bool) -> None:
    if stream and (json_output or output is not None):
        raise UsageError(f"--stream and {'--json' if json_output else '--output'} do not mix; choose one")
    if output is not None and json_output:
        raise UsageError("--output writes the --json records to the file (one a line); drop --json")
    if (resume or overwrite) and output is None:
        raise UsageError(f"{'--resume' if resume else '--overwrite'} works on the file given with --output FILE")
    if resume and overwrite:
        raise UsageError("--resume continues the output file and --overwrite replaces it; choose one")
    if mix_settings and not resume:
        raise UsageError("--mix-settings lets --resume continue a file made with other settings; add --resume")


def _kept_so_far(err: BaseException, results, written: int, total: int) -> LlmtoolError:
    """The error to report when a run stops part way: with an output file, where its results are and how to go on."""
    kept = (results.kept + written) if results is not None else 0
    if isinstance(err, KeyboardInterrupt):
        err = Interrupted(f"interrupted after {kept} of {total} prompts" if kept else "interrupted")
    if not kept:
        return err
    return err.within(after=f"; the results of the {kept} prompts before are in {results.path}: rerun with --resume "
                            "to continue")


def _record(g) -> dict:
    """One prompt's result: the --json schema's record, and one line of an --output file."""
    return {"prompt": g.prompt, "prompt_tokens": g.prompt_tokens,
            "generations": [{"text": t, "new_tokens": n} for t, n in zip(g.texts, g.new_tokens)]}


class _Sink:
    """Where results go as they come, in prompt order."""

    def __init__(self):
        self.count = 0
        self.new_tokens = 0
        self.display = None  # the ResultsDisplay that stdout output goes through

    def add(self, g) -> None:
        self.count += 1
        self.new_tokens += sum(g.new_tokens)
        self.take(g)

    def take(self, g) -> None:
        pass

    def finish(self, seconds: float) -> None:
        pass


class _FileSink(_Sink):
    def __init__(self, results):
        super().__init__()
        self.results = results

    def take(self, g) -> None:
        self.results.write(_record(g))


class _TextSink(_Sink):
    """Plain text on stdout, each result as soon as it is in order; a blank line between results."""

    def __init__(self, prefix_prompt: bool):
        super().__init__()
        self.prefix_prompt = prefix_prompt
        self.printed = 0

    def take(self, g) -> None:
        for text in g.texts:
            self.display.write(("\n\n" if self.printed else "") + (g.prompt if self.prefix_prompt else "") + text)
            self.printed += 1

    def finish(self, seconds: float) -> None:
        if self.printed:
            sys.stdout.write("\n")
            sys.stdout.flush()


class _JsonSink(_Sink):
    """One JSON document on stdout at the end: its timing covers the whole run."""

    def __init__(self, model: str, task: str, compiled: bool):
        super().__init__()
        self.head = {"model": model, "task": task}
        self.compiled = compiled
        self.records = []

    def take(self, g) -> None:
        self.records.append(_record(g))

    def finish(self, seconds: float) -> None:
        from llmtool.commands._output import print_json

        print_json({**self.head, "results": self.records, "timing": {
            "seconds": round(seconds, 4), "new_tokens": self.new_tokens,
            "tokens_per_second": round(self.new_tokens / seconds, 2) if seconds else None,
            "compiled": self.compiled,
        }})


def _prompt_source(prompts: list[str] | None, file: Path | None):
    """The prompts: a list (arguments, stdin) or a `PromptFile`, read as it is used; either has a length."""
    from llmtool import generation

    if prompts and file:
        raise UsageError("give prompts as arguments or with --file, not both")
    if file is not None:
        if str(file) == "-":
            return generation.parse_prompts(read_stdin(), "stdin")
        return generation.PromptFile(file)
    if prompts:
        for i, prompt in enumerate(prompts, 1):
            if not prompt.strip():
                raise UsageError(f"prompt {i} is empty; give some text to continue")
        return list(prompts)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError('no prompt given; pass one (llmtool generate "Once upon a time"), --file, or stdin')
    return generation.parse_prompts(read_stdin(), "stdin")
