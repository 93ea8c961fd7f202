"""`llmtool attention`: a model's attention weights on one text, drawn as heatmaps labelled with the tokens
and/or printed as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands.options import BaseModelOption, DeviceOption, DtypeOption, ModelOption, TrustRemoteCodeOption
from llmtool.errors import UsageError

SETTING_NAMES: dict[str, str | None] = {"text": "TEXT"}  # the argument; every other setting is an option
ENV_DEFAULTS = {"model": "LLMTOOL_MODEL"}


def attention(
    text: Annotated[str, typer.Argument(help="The text whose attention to show.", show_default=False)],
    model: ModelOption = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Draw the maps into this picture (.png, .svg or .pdf).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the tokens and the maps' weights as JSON on stdout.")] = False,
    layer: Annotated[Optional[int], typer.Option(help="Layer to show, from 0; negative counts from the last. (default: the last)", show_default=False)] = None,
    head: Annotated[Optional[int], typer.Option(help="Show this head of the layer alone, from 0. (default: every head, as a grid)", show_default=False)] = None,
    average: Annotated[Optional[str], typer.Option(help="heads: one map, the mean of the layer's heads; layers: one map, the mean of every layer and head.")] = None,
    part: Annotated[Optional[str], typer.Option(help="Encoder-decoder models (T5): encoder, decoder (self-attention) or cross (decoder over encoder). (default: encoder)", show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option(help="Encoder-decoder models: the text the decoder reads, for --part decoder or cross.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --output: replace an existing file.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Show where a model looks: its attention weights on TEXT, as heatmaps labelled with the tokens.

    Rows are the tokens that attend (queries), columns the tokens attended to (keys); each row sums to 1. By default every head of the last layer is drawn, as a grid; --layer picks another layer, --head one head of it, --average heads the mean of its heads and --average layers the mean over the whole model. GPT-2-style models show their (causal) self-attention, BERT-style models their self-attention over the whole text; an encoder-decoder (T5) shows its encoder, or with --part and --target its decoder's self-attention or its cross-attention over the encoder's tokens.

    --output writes the picture (an existing file is replaced only with --overwrite); --json prints the tokens and each map's weights (rows of 6-decimal numbers) on stdout. Give either, or both. The model runs on transformers' eager attention, the one path that returns the weights.

    Examples:

      llmtool attention --model ./my-gpt2 "The quick brown fox jumps" -o attention.png

      llmtool attention --model ./my-bert "The film was great." --layer 0 --head 1 -o head.png

      llmtool attention --model ./my-bert "The film was great." --average layers -o mean.svg

      llmtool attention --model ./my-t5 "translate English to German: The house is small." --part cross --target "Das Haus ist klein." -o cross.png

      llmtool attention --model ./my-gpt2 "The quick brown fox" --json > attention.json
    """
    from llmtool.attention import as_record, check_request, compute, load, maps
    from llmtool.attention_plot import picture_format, render
    from llmtool.commands._output import note, print_json
    from llmtool.models import default_generation_model
    from llmtool.results_file import claim_output, write_whole

    if output is None and not json_output:
        raise UsageError("nothing to write: give --output FILE.png for the picture, --json for the weights, or both")
    if overwrite and output is None:
        raise UsageError("--overwrite works on the file given with --output FILE")
    picture = picture_format(output) if output is not None else None
    check_request(text, target, part, layer, head, average)
    model = model or default_generation_model()
    # Claimed (checked, and locked until written) before the model loads; the file changes only when the picture
    # is whole.
    lock = claim_output(output, _model_files(model, base_model), overwrite=overwrite) if output is not None else None
    try:
        lm = load(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, base_model=base_model)
        weights = compute(lm, text, target, part)
        shown = maps(weights, layer, head, average)
        if output is not None:
            write_whole(output, render(weights, shown, Path(model).name or model, picture))
    finally:
        if lock is not None:
            lock.release()
    if json_output:
        print_json(as_record(weights, shown, average))
    if output is not None:
        maps_drawn = f"{len(shown)} maps" if len(shown) > 1 else shown[0].title
        note(f"Wrote {output} ({maps_drawn}, {len(weights.query_tokens)} x {len(weights.key_tokens)} tokens)")


def _model_files(*names: str | None) -> dict[str, Path]:
    """The files of the model directories the run reads (an output must never replace one)."""
    files = {}
    for name in names:
        directory = Path(name).expanduser() if name else None
        if directory is not None and directory.is_dir():
            files.update({f"model file '{path}'": path for path in sorted(directory.iterdir()) if path.is_file()})
    return files
