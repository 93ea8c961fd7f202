"""`llmtool finetune RECIPE.yaml [section.key=value ...]`: train from a recipe, resumable, on one or many devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands.options import DryRunOption, OverwriteOption, ResumeOption

# The recipe keys of the settings its errors name (the model's own, at each load: finetuning.RECIPE_MODEL_NAMES).
SETTING_NAMES = {"target_modules": "model.lora.target_modules", "max_new_tokens": "data.max_target_length"}


def finetune(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (see recipes/).", show_default=False)],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides: train.lr=3e-5 data.max_length=64", show_default=False)] = None,
    dry_run: DryRunOption = False,
    resume: ResumeOption = False,
    overwrite: OverwriteOption = False,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where to write the model (default: the recipe's output_dir, else runs/RECIPE-NAME).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result (output dir, steps, losses, metrics) as JSON.")] = False,
    show_masks: Annotated[Optional[int], typer.Option("--show-masks", metavar="N", min=1, help="Chat: print the first N training conversations as rendered, trained tokens in [[ ]]; train nothing.", show_default=False)] = None,
) -> None:
    """Fine-tune a model (or pretrain one from scratch) as a recipe describes: causal LM, classification, seq2seq or chat.

    The recipe is checked before anything loads: unknown keys, wrong types, bad values, missing files and columns are reported together. Training writes checkpoints atomically (train.save_every), metrics.csv, TensorBoard events and loss.png, then the final model, tokenizer and resolved recipe, loadable with transformers.pipeline(). The same command runs on many devices under accelerate launch or torchrun.

    Examples:

      llmtool finetune recipes/sentiment.yaml

      llmtool finetune recipes/sentiment.yaml train.lr=3e-5 train.epochs=1

      llmtool finetune recipes/pretrain-gpt2.yaml --dry-run

      llmtool finetune recipes/sentiment.yaml --resume

      llmtool finetune recipes/chat-gpt2.yaml --show-masks 3

      accelerate launch -m llmtool finetune recipes/causal-lm.yaml
    """
    from llmtool import finetuning
    from llmtool.commands._recipe_run import print_summary, run_recipe, summary

    if show_masks is not None:
        from llmtool import config

        resolved = config.load_recipe(recipe, overrides or [], output_dir=output_dir, verb="finetune")
        typer.echo("\n\n".join(finetuning.show_masks(resolved, show_masks)))
        return

    result = run_recipe("finetune", recipe, overrides or [], output_dir, dry_run,
                        lambda resolved, progress: finetuning.finetune(resolved, overwrite=overwrite, resume=resume,
                                                                       progress=progress))
    if result is None:
        return
    if json_output:
        from llmtool.commands._output import print_json

        print_json(summary(result))
        return
    print_summary(summary(result))
