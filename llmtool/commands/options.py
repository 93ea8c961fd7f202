"""Options that several verbs share, declared once."""

from pathlib import Path
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

# A generating verb's model (generate, chat) and decoding options.
ModelOption = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Local model directory or Hub id. (default: $LLMTOOL_MODEL, else gpt2)", show_default=False)
]
DoSampleOption = Annotated[
    Optional[bool], typer.Option("--do-sample/--greedy", help="Sample, or decode greedily. (default: greedy, unless --temperature, --top-k or --top-p is given)", show_default=False)
]
TemperatureOption = Annotated[float, typer.Option(help="Sampling temperature; a value other than 1 turns sampling on.")]
TopKOption = Annotated[Optional[int], typer.Option(help="Sample from the k most likely tokens.")]
TopPOption = Annotated[Optional[float], typer.Option(help="Nucleus sampling: the smallest token set with this much probability, in (0, 1].")]
RepetitionPenaltyOption = Annotated[Optional[float], typer.Option(help="Penalise repeated tokens (1.0 = none; 1.2 is typical).")]
SeedOption = Annotated[Optional[int], typer.Option(help="Random seed: the same seed gives the same text.")]
BlockWordsOption = Annotated[Optional[Path], typer.Option(help="File of words/phrases (one a line) that must never be generated.")]
BlockDefaultOption = Annotated[bool, typer.Option("--block-default", help="Also block llmtool's shipped list of offensive words.")]

BaseModelOption = Annotated[
    Optional[str], typer.Option("--base-model", help="For a LoRA adapter directory in --model: the base model to attach it to (default: the one named in its adapter_config.json).", show_default=False)
]

# The recipe verbs' (finetune, distill) run options.
DryRunOption = Annotated[bool, typer.Option("--dry-run", "--validate", help="Check the recipe and print it resolved; train nothing.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue from the latest complete checkpoint in the output directory.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output directory.")]
