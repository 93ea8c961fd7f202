"""The `llmtool` command: a Typer app with one command per verb. Nothing heavy is imported here, so
`llmtool --help` stays fast; each command imports torch/transformers inside its own body."""

from __future__ import annotations

import functools
import importlib
import os
from typing import Annotated, Optional

import typer

from llmtool import __version__
from llmtool.commands import COMMANDS
from llmtool.errors import Interrupted, LlmtoolError, SettingError

app = typer.Typer(
    name="llmtool",
    help="Put Hugging Face models to work: generate, chat, fine-tune, classify, distill, evaluate, embed and search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _setting_names(verb: str, module, given: dict) -> dict[str, str | None]:
    """How the user of `verb` spells each setting that a domain error names: the command's own options by their
    parameter names (the domain's `max_new_tokens` is --max-new-tokens), then the module's SETTING_NAMES (recipe
    keys, and options spelt otherwise), then, for an option not `given` whose value came from an environment
    variable (the module's ENV_DEFAULTS), that variable: the user set it there, not on the command line."""
    params = typer.main.get_command(app).commands[verb].params
    flags = {p.name: next((o for o in p.opts if o.startswith("--")), p.opts[0])  # --output, not -o
             for p in params if p.param_type_name == "option"}
    from_environment = {key: f"${variable}" for key, variable in getattr(module, "ENV_DEFAULTS", {}).items()
                        if not given.get(key) and os.environ.get(variable)}
    return {**flags, **module.SETTING_NAMES, **from_environment}


def _friendly_errors(verb: str, module):
    """The verb's function, whose errors name the settings as its user spells them; user errors (and Ctrl-C)
    become one red line and an exit code; LLMTOOL_DEBUG=1 re-raises them."""
    command = getattr(module, verb)

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (LlmtoolError, KeyboardInterrupt) as err:
            if isinstance(err, SettingError):
                err.name(_setting_names(verb, module, kwargs))
            if os.environ.get("LLMTOOL_DEBUG"):
                raise
            from llmtool.commands._output import print_error

            if isinstance(err, KeyboardInterrupt):  # Ctrl-C outside a training loop: nothing to resume
                err = Interrupted("interrupted")
            print_error(str(err))
            raise typer.Exit(err.exit_code) from None

    return run


for _verb in COMMANDS:
    _module = importlib.import_module(f"llmtool.commands.{_verb}")
    app.command(_verb)(_friendly_errors(_verb, _module))


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"llmtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Put Hugging Face models to work: generate, chat, fine-tune, classify, distill, evaluate, embed and search."""


def main() -> None:
    """The console entry point. Usage errors (a misspelt option, a value of the wrong type) become one red line
    too, rather than a usage box."""
    import sys

    try:
        code = app(standalone_mode=False, prog_name="llmtool")
    except typer.TyperException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # bare `llmtool` or `llmtool VERB`: the help is the answer
            err.show()
            sys.exit(err.exit_code)
        from llmtool.commands._output import print_error

        context = getattr(err, "ctx", None)
        command = context.command_path if context is not None else "llmtool"
        print_error(f"{err.format_message()} (see: {command} --help)")
        sys.exit(err.exit_code)
    except typer.Abort:  # Ctrl-C while the command line itself is being read
        from llmtool.commands._output import print_error

        print_error("interrupted")
        sys.exit(Interrupted.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
