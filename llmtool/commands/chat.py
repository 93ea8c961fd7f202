"""`llmtool chat`: talk to a causal LM through its chat template: a conversation on a terminal, the reply streamed
as it comes; or, from a script, the replies to --message turns or to JSON messages on stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands._output import is_terminal, note, print_error, print_json
from llmtool.commands.options import (BaseModelOption, BlockDefaultOption, BlockWordsOption, DeviceOption,
                                      DoSampleOption, DtypeOption, ModelOption, RepetitionPenaltyOption, SeedOption,
                                      TemperatureOption, TopKOption, TopPOption, TrustRemoteCodeOption)
from llmtool.errors import LlmtoolError, UsageError, naming
from llmtool.models import MODEL_ENV

SETTING_NAMES = {"greedy": "--greedy"}  # the off side of --do-sample
ENV_DEFAULTS = {"model": MODEL_ENV}
# Inside a conversation errors are printed there, not by the CLI: they name the settings themselves.
CONVERSATION_NAMES = {"max_new_tokens": "--max-new-tokens", "output": "/save"}
CONVERSATION_HELP = """\
/system TEXT  set the system turn (/system alone removes it)
/reset        forget the conversation (the system turn stays)
/save FILE    write the conversation to a new file, as JSON messages (an existing file is never replaced)
/help         this list
/exit         leave (Ctrl-D too); Ctrl-C stops a reply, keeping the part shown"""


def chat(
    message: Annotated[Optional[list[str]], typer.Option("--message", metavar="TEXT", help="A user turn; repeat it for several, each answered in turn. Without it: JSON messages on stdin, or a conversation on a terminal.", show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option(help="The system turn (in a conversation, /system changes it).", show_default=False)] = None,
    model: ModelOption = None,
    chat_template: Annotated[Optional[str], typer.Option(metavar="NAME|FILE", help="For a model whose tokenizer has no chat template: chatml, zephyr, or a Jinja file.", show_default=False)] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="New tokens per reply. (default: 256, or half the model's positions where that is less)", show_default=False)] = None,
    do_sample: DoSampleOption = None,
    temperature: TemperatureOption = 1.0,
    top_k: TopKOption = None,
    top_p: TopPOption = None,
    repetition_penalty: RepetitionPenaltyOption = None,
    seed: SeedOption = None,
    block_words: BlockWordsOption = None,
    block_default: BlockDefaultOption = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON: the messages, replies included, and each reply's token counts.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Talk to a model through its chat template (the one fine-tuning saved with it, or --chat-template).

    On a terminal, with no --message, it is a conversation: each reply streams as it comes; /system, /reset, /save FILE, /help and /exit are commands, Ctrl-C stops a reply (the part shown is kept) and Ctrl-D leaves. From a script, each --message is a user turn, answered in order with the conversation carried along, and each reply is printed on a line of its own; or a JSON list of {role, content} messages on stdin, ending with a user turn, gets its reply. What no longer fits the model's positions beside a reply is dropped, oldest exchange first (the system turn stays), and stderr says so.

    Examples:

      llmtool chat --model ./my-chat-model

      llmtool chat --model ./my-chat-model --system "Answer in one sentence." --message "What is a tokenizer?"

      llmtool chat --model ./my-gpt2 --chat-template zephyr --message "Hi" --message "And then?" --json

      echo '[{"role": "user", "content": "Hello"}]' | llmtool chat --model ./my-chat-model --seed 1 --temperature 0.7
    """
    from llmtool import conversation, generation, models
    from llmtool.tasks import CAUSAL_LM

    settings = generation.GenerationSettings(
        max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
        repetition_penalty=repetition_penalty, seed=seed,
        block_words=generation.read_block_words(block_words, block_default),
    )
    settings.validate()
    script = _script_turns(message, system, json_output)  # None: a conversation on the terminal
    model = model or models.default_generation_model()
    lm = models.load_model(model, allowed_tasks=(CAUSAL_LM,), verb="chat", device=device, dtype=dtype,
                           trust_remote_code=trust_remote_code, base_model=base_model)
    if script is None:
        system_turn = [{"role": "system", "content": system}] if system else []
        talk = conversation.Conversation(lm, settings, chat_template, system_turn)
        _converse(talk, model, inputs={"chat template": chat_template, "block-words file": block_words})
        return
    start, asked = script
    talk = conversation.Conversation(lm, settings, chat_template, start)
    replies = []
    for text in asked:
        _note_dropped(talk, talk.add(text))
        reply = talk.answer()
        replies.append({"prompt_tokens": reply.prompt_tokens, "new_tokens": reply.new_tokens})
        if not json_output:
            sys.stdout.write(reply.text + "\n")
            sys.stdout.flush()
    if json_output:
        print_json({"model": model, "messages": talk.messages, "replies": replies})


def _script_turns(message: list[str] | None, system: str | None,
                  json_output: bool) -> tuple[list[dict], list[str]] | None:
    """What a script asks: the turns the conversation starts with, and the user turns to answer in order. None on a
    terminal given no --message: a conversation."""
    from llmtool.chat import prompt_problem

    if message:
        for n, text in enumerate(message, 1):
            if not text.strip():
                raise UsageError(f"--message {n} is empty; give some text")
        return ([{"role": "system", "content": system}] if system else []), list(message)
    if is_terminal(sys.stdin):
        if json_output:
            raise UsageError("--json prints the replies to --message turns or to messages on stdin; a conversation on "
                             "a terminal has none: add --message")
        return None
    if sys.stdin is None:
        raise UsageError("no message: give --message, pipe JSON messages on stdin, or run it on a terminal to talk")
    if system is not None:
        raise UsageError("--system and messages on stdin do not mix; put the system turn in the messages")
    text = read_stdin()
    if not text.strip():
        raise UsageError("stdin is empty; pipe a JSON list of {role, content} messages, or give --message")
    try:
        messages = json.loads(text)
    except json.JSONDecodeError as err:
        raise LlmtoolError(f"stdin is not JSON ({err.msg} at line {err.lineno}, column {err.colno}); pipe a list of "
                           "{role, content} messages") from None
    problem = prompt_problem(messages)
    if problem:
        raise LlmtoolError(f"the messages on stdin: {problem}")
    return messages[:-1], [messages[-1]["content"]]


def _converse(talk, model: str, inputs: dict) -> None:
    """The conversation on the terminal, until /exit or Ctrl-D. A problem is one red line, and it goes on."""
    try:
        import readline  # noqa: F401  (input() gets line editing and a history)
    except ImportError:  # not on every platform
        pass
    note(f"talking to {model}; /help lists the commands, Ctrl-D leaves")
    while True:
        try:
            text = input("> ").strip()
        except KeyboardInterrupt:  # the line is dropped, as in a shell
            sys.stdout.write("\n")
            continue
        except EOFError:
            sys.stdout.write("\n")
            return
        if not text:
            continue
        try:
            with naming(CONVERSATION_NAMES):
                if not text.startswith("/"):
                    _turn(talk, text)
                elif not _command(talk, text, inputs):
                    return
        except LlmtoolError as err:
            print_error(str(err))


def _turn(talk, text: str) -> None:
    """One exchange: the user's turn, and the reply streamed. Ctrl-C stops the reply and keeps what was shown."""
    try:
        _note_dropped(talk, talk.add(text))
    except KeyboardInterrupt:  # before the reply began: the turn was not added
        note("(stopped)")
        return
    streamer = _streamer(talk.lm.tokenizer)
    try:
        talk.answer(streamer)
    except KeyboardInterrupt:
        streamer.end()  # the decoded tokens not shown yet (a word waits for its end), and the line's end
        talk.cut_short(streamer.shown)
        note("(stopped; the part shown is kept)" if streamer.shown else "(stopped)")


def _command(talk, line: str, inputs: dict) -> bool:
    """Do a /command; False for /exit."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name == "/exit":
        return False
    if name == "/help":
        note(CONVERSATION_HELP)
    elif name == "/reset":
        talk.reset()
        note("(the conversation is forgotten" + ("; the system turn stays)" if talk.system else ")"))
    elif name == "/system":
        talk.set_system(argument)
        note("(system turn set)" if argument else "(system turn removed)")
    elif name == "/save":
        if not argument:
            raise UsageError("/save needs a file name: /save FILE")
        talk.save(Path(argument).expanduser(), inputs)
        note(f"(saved {len(talk.messages)} messages to {argument})")
    else:
        raise UsageError(f"unknown command {name}; /help lists them")
    return True


def _streamer(tokenizer):
    """transformers' TextStreamer, as `generate --stream` prints with, keeping what it has shown."""
    from transformers import TextStreamer

    class Shown(TextStreamer):
        shown = ""

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            self.shown += text
            super().on_finalized_text(text, stream_end)

    return Shown(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _note_dropped(talk, dropped: int) -> None:
    if dropped:
        turns = f"oldest {dropped} turns are" if dropped > 1 else "oldest turn is"
        note(f"(the conversation outgrew this model's {talk.limit} positions: its {turns} dropped; the model no "
             "longer sees them)")
