"""Options that several verbs share, declared once."""

from typing import Annotated, Optional

import typer

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

# The recipe verbs' (finetune, distill) run options.
DryRunOption = Annotated[bool, typer.Option("--dry-run", "--validate", help="Check the recipe and print it resolved; train nothing.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue from the latest complete checkpoint in the output directory.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output directory.")]
