"""Layer surgery: finding a model's stacks of transformer layers, and a smaller copy of a model that keeps some of
its layers, each initialised from the layer it was copied from. Distillation makes students this way; pruning
drops the layers it ranks lowest this way."""

from __future__ import annotations

import copy

from llmtool.errors import SettingError, literal

# Where no student can be made from the teacher, a caller that also takes an existing student says so.
STUDENT_ADVICE = {"student": "; give an existing student with {student}"}


def layer_lists(model) -> list[str]:
    """The names of the model's stacks of transformer layers: the shallowest ModuleLists as long as the config's
    layer count (GPT-2 `transformer.h`, BERT `bert.encoder.layer`, T5 `encoder.block` and `decoder.block`)."""
    import torch

    counts = {model.config.num_hidden_layers, getattr(model.config, "num_decoder_layers", None)}
    found = [(name.count("."), name) for name, module in model.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module) in counts and name]
    if not found:
        raise SettingError(f"cannot find the layers of a {model.config.model_type} model to build a student from",
                           STUDENT_ADVICE)
    depth = min(d for d, _ in found)
    return [name for d, name in found if d == depth]


def kept_layers(n: int, layers: list[int] | None) -> list[int]:
    """The teacher layers a student keeps: those asked for, else every other one (as DistilBERT did)."""
    return list(range(0, n, 2)) if layers is None else list(layers)


def student_from_teacher(teacher, layers: list[int] | None):
    """A copy of the teacher with only `layers` (default: every other one), each initialised from that teacher
    layer; everything else (embeddings, head, final norm) copied as it is."""
    n = teacher.config.num_hidden_layers
    if getattr(teacher.config, "num_decoder_layers", n) != n:
        raise SettingError("the teacher's encoder and decoder have different depths", STUDENT_ADVICE)
    keep = kept_layers(n, layers)
    wrong = [i for i in keep if i >= n]
    if wrong:
        raise SettingError(f"{{layers}}: the teacher has {n} layers (0 to {n - 1}); {literal(wrong)} are not among "
                           "them")
    if len(keep) >= n:
        raise SettingError(f"{{layers}}: keeping {len(keep)} of the teacher's {n} layers makes no smaller student")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(keep)
    if hasattr(config, "num_decoder_layers"):
        config.num_decoder_layers = len(keep)
    student = type(teacher)(config)
    stacks = layer_lists(teacher)
    source = teacher.state_dict()
    state = {}
    for key in student.state_dict():
        mapped = key
        for stack in stacks:
            prefix = stack + "."
            if key.startswith(prefix):
                index, rest = key[len(prefix):].split(".", 1)
                mapped = f"{prefix}{keep[int(index)]}.{rest}"
        # T5 keeps its relative position bias in layer 0 only: the student's layer 0 takes the teacher's
        state[key] = source[mapped] if mapped in source else source[key]
    student.load_state_dict(state)
    return student, keep
