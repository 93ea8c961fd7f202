"""Options that several verbs share, declared once."""

from typing import Annotated, Optional

import typer

from llmtool.models import Names

DeviceOption = Annotated[
    Optional[str], typer.Option(help="cpu, cuda, cuda:N or mps. (default: cuda if present, else mps, else cpu)", show_default=False)
]
DtypeOption = Annotated[str, typer.Option(help="auto, fp32, fp16 or bf16 (auto: bf16/fp16 on a GPU, fp32 elsewhere).")]
TrustRemoteCodeOption = Annotated[
    bool, typer.Option("--trust-remote-code", help="Allow running Python code shipped with a Hub model (off by default).")
]
NewHeadOption = Annotated[
    bool, typer.Option("--new-head", help="Accept a task whose head the checkpoint lacks (it starts untrained).")
]

BaseModelOption = Annotated[
    Optional[str], typer.Option("--base-model", help="For a LoRA adapter directory in --model: the base model to attach it to (default: the one named in its adapter_config.json).", show_default=False)
]

# How model errors name the settings for a command's user (models.py is light: no torch at import).
MODEL_OPTION_NAMES = Names(model="--model", task="--task", new_head="--new-head", base_model="--base-model")
