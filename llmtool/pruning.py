"""Structured pruning that keeps a model loadable by `from_pretrained`: whole layers dropped, and every MLP made
narrower by the same amount, both ranked by activations measured on calibration batches (as the Minitron work
ranks them).

- A layer's importance is how much it changes its input: 1 - cos(input, output) of its hidden states, averaged over
  the real tokens (a layer whose output is nearly its input can go).
- An MLP unit's importance is its mean absolute activation (the input of the MLP's down projection) over the real
  tokens; each layer keeps its own most active units, the same number in every layer, so one config value
  (n_inner, intermediate_size, hidden_dim, d_ff) describes the result.
"""

from __future__ import annotations

from llmtool.errors import SettingError
from llmtool.layers import layer_lists, student_from_teacher

# Per family: the layer-relative names of the MLP's up projections (any that exist), its down projection, and the
# config key of the MLP width.
MLP_LAYOUT = {
    "gpt2": (("mlp.c_fc",), "mlp.c_proj", "n_inner"),
    "bert": (("intermediate.dense",), "output.dense", "intermediate_size"),
    "distilbert": (("ffn.lin1",), "ffn.lin2", "hidden_dim"),
    "t5": (("DenseReluDense.wi", "DenseReluDense.wi_0", "DenseReluDense.wi_1"), "DenseReluDense.wo", "d_ff"),
}


def _layers(model):
    """Every transformer layer of the model, stack by stack."""
    return [layer for stack in layer_lists(model) for layer in model.get_submodule(stack)]


def _find(layer, name: str):
    """A layer's submodule by its layer-relative name (T5 nests its MLP one level deeper, under layer.N.)."""
    modules = dict(layer.named_modules())
    if name in modules:
        return modules[name]
    found = [m for n, m in modules.items() if n.endswith("." + name)]
    return found[0] if len(found) == 1 else None


def _mlp(model, layer):
    if model.config.model_type not in MLP_LAYOUT:
        raise SettingError(f"{{mlp_keep}}: MLP pruning knows gpt2, bert, distilbert and t5 models, not "
                           f"{model.config.model_type}; set {{mlp_keep}}: 1.0 to prune only layers")
    ups, down, _ = MLP_LAYOUT[model.config.model_type]
    return [m for m in (_find(layer, u) for u in ups) if m is not None], _find(layer, down)


def measure(model, batches, device) -> tuple[list[float], list]:
    """Layer importances (1 - cos between a layer's input and output hidden states) and, per layer, its MLP units'
    mean absolute activation, over the real tokens of `batches` (dicts of model inputs with attention_mask)."""
    import torch

    layers = _layers(model)
    measure_mlp = model.config.model_type in MLP_LAYOUT
    changes = [torch.zeros((), dtype=torch.float64) for _ in layers]
    activity = [None] * len(layers)
    tokens = [0] * len(layers)
    state = {"mask": None}
    hooks = []

    def layer_hook(i):
        def hook(module, args, kwargs, output):
            before = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))
            after = output[0] if isinstance(output, tuple) else output
            real = _real(before, state["mask"])
            cos = torch.nn.functional.cosine_similarity(before[real].double(), after[real].double(), dim=-1)
            changes[i] += (1 - cos).sum().cpu()
            tokens[i] += int(real.sum())
        return hook

    def mlp_hook(i):
        def hook(module, args):
            x = args[0]
            real = _real(x, state["mask"])
            total = x[real].abs().double().sum(dim=0).cpu()
            activity[i] = total if activity[i] is None else activity[i] + total
        return hook

    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_hook(layer_hook(i), with_kwargs=True))
        if measure_mlp:
            hooks.append(_mlp(model, layer)[1].register_forward_pre_hook(mlp_hook(i)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                state["mask"] = batch.get("attention_mask")
                model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    importance = [float(c) / max(n, 1) for c, n in zip(changes, tokens)]
    return importance, [a / max(n, 1) if a is not None else None for a, n in zip(activity, tokens)]


def _real(hidden, mask):
    """The positions of real tokens (decoder stacks of T5 see all their positions: labels mask them later)."""
    import torch

    if mask is not None and mask.shape == hidden.shape[:2]:
        return mask.bool()
    return torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)


def layers_to_keep(importance: list[float], n_stack: int, drop: int) -> list[int]:
    """The layers kept after dropping the `drop` least important ones (scores summed over an encoder-decoder's two
    stacks, which lose the same layers), in order."""
    per_layer = [sum(importance[s * n_stack + i] for s in range(len(importance) // n_stack)) for i in range(n_stack)]
    if drop >= n_stack:
        raise SettingError(f"{{drop_layers}}: the model has {n_stack} layers; dropping {drop} leaves none")
    dropped = sorted(range(n_stack), key=lambda i: (per_layer[i], i))[:drop]
    return [i for i in range(n_stack) if i not in dropped]


def shrink_mlps(model, activity: list, keep: int) -> None:
    """Keep the `keep` most active units of every MLP (in their original order), in place; the config follows."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for layer, scores in zip(_layers(model), activity):
        order = torch.argsort(scores, descending=True, stable=True)[:keep].sort().values
        ups, down = _mlp(model, layer)
        for up in ups:
            _slice(up, order, outputs=True, conv=isinstance(up, Conv1D))
        _slice(down, order, outputs=False, conv=isinstance(down, Conv1D))
    setattr(model.config, MLP_LAYOUT[model.config.model_type][2], keep)


def _slice(module, index, outputs: bool, conv: bool) -> None:
    """Keep the output units (`outputs`) or input units at `index`. A Conv1D (GPT-2) stores its weight transposed."""
    import torch

    weight = module.weight.data
    dim = (1 if conv else 0) if outputs else (0 if conv else 1)
    module.weight = torch.nn.Parameter(weight.index_select(dim, index.to(weight.device)).contiguous())
    if outputs and module.bias is not None:
        module.bias = torch.nn.Parameter(module.bias.data.index_select(0, index.to(weight.device)).contiguous())
    if conv:
        if outputs:
            module.nf = len(index)
    elif outputs:
        module.out_features = len(index)
    else:
        module.in_features = len(index)


def prune(model, batches, device, drop_layers: int, mlp_keep: float):
    """A pruned copy of `model`: `drop_layers` layers fewer and MLPs at `mlp_keep` of their width, both chosen
    from activations on `batches`. Returns (pruned model, kept layer numbers, MLP width)."""
    import copy

    importance, activity = measure(model, batches, device)
    n = model.config.num_hidden_layers
    kept = layers_to_keep(importance, n, drop_layers)
    if drop_layers:
        pruned, _ = student_from_teacher(model, kept)
        stacks = len(importance) // n
        activity = [activity[s * n + i] for s in range(stacks) for i in kept]
    else:
        pruned = copy.deepcopy(model)
    key = MLP_LAYOUT.get(model.config.model_type, (None, None, None))[2]
    width = getattr(model.config, key, None) if key else None
    if width is None and model.config.model_type == "gpt2":
        width = 4 * model.config.n_embd  # GPT-2's n_inner: None means 4 x n_embd
    if mlp_keep < 1.0:
        _mlp(model, _layers(model)[0])  # an unknown family is refused here, with its name
        width = max(1, round(width * mlp_keep))
        shrink_mlps(pruned, activity, width)
    return pruned, kept, width
