"""`llmtool distill RECIPE.yaml [section.key=value ...]`: train a smaller student from a teacher, then compare them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands.options import DryRunOption, OverwriteOption, ResumeOption

# The recipe keys of the settings its errors name (the teacher's and the student's, at each load:
# distillation.TEACHER_NAMES, STUDENT_NAMES).
SETTING_NAMES = {"layers": "student.layers", "student": "student.name", "drop_layers": "prune.layers",
                 "mlp_keep": "prune.mlp_keep", "max_new_tokens": "data.max_target_length"}


def distill(
    recipe: Annotated[Path, typer.Argument(help="Distill recipe YAML file (see recipes/distill-*.yaml).", show_default=False)],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides: distill.temperature=4 student.layers=[0,2]", show_default=False)] = None,
    dry_run: DryRunOption = False,
    resume: ResumeOption = False,
    overwrite: OverwriteOption = False,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where to write the student (default: the recipe's output_dir, else runs/RECIPE-NAME).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result and the teacher-vs-student report as JSON.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Make the student by pruning the teacher (the recipe's prune block, else its defaults: MLPs at half width), then distil to recover.")] = False,
) -> None:
    """Distil a teacher into a smaller student: the student learns the teacher's softened outputs and the labels.

    The student is an existing model with the teacher's vocabulary (student.name), or is made from the teacher with fewer layers, each copied from a teacher layer (student.layers; default: every other one). The loss is alpha * T^2 * KL(teacher || student) at temperature T plus (1 - alpha) * cross-entropy on the labels, with an optional hidden-state loss. Checkpoints, exact resume, logs and many processes work as in finetune. At the end, teacher and student are compared on the validation data: the task's metrics, parameters, size and inference speed.

    Examples:

      llmtool distill recipes/distill-sentiment.yaml

      llmtool distill recipes/distill-gpt2.yaml student.layers=[0,3] distill.temperature=4

      llmtool distill recipes/distill-sentiment.yaml --dry-run

      llmtool distill recipes/prune-gpt2.yaml prune.layers=1 prune.mlp_keep=0.5
    """
    from llmtool import config, distillation
    from llmtool.commands._recipe_run import print_summary, run_recipe, summary

    overrides = list(overrides or [])
    if prune and "prune" not in config.read_yaml(recipe):
        overrides += ["prune=true", "student.layers=null", "student.name=null"]

    result = run_recipe("distill", recipe, overrides, output_dir, dry_run,
                        lambda resolved, progress: distillation.distill(resolved, overwrite=overwrite, resume=resume,
                                                                        progress=progress))
    if result is None:
        return
    if json_output:
        from llmtool.commands._output import print_json

        print_json({**summary(result), "report": result.report})
        return
    print_summary(summary(result))
    if result.report:
        _print_report(result.report)


ROWS = (("parameters", "{:,}"), ("size_mb", "{:.2f}"), ("examples_per_second", "{:,.0f}"))


def _print_report(report: dict) -> None:
    """Teacher and student side by side on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="teacher vs student (validation data)")
    table.add_column("")
    table.add_column("teacher", justify="right")
    table.add_column("student", justify="right")
    metrics = [k for k in report["teacher"] if k not in dict(ROWS)]
    for key in metrics:
        cells = [report[role][key] for role in ("teacher", "student")]
        table.add_row(key, *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in cells))
    for key, shape in ROWS:
        table.add_row(key, *(shape.format(report[role][key]) for role in ("teacher", "student")))
    Console(soft_wrap=True).print(table)
    line = f"student speed: {report['speedup']:.2f}x the teacher's, size: {report['size_ratio']:.2f}x"
    if report.get("kept") is not None:
        line += f", {report['metric']} kept: {report['kept']:.1%}"
    typer.echo(line)
