"""`distill`: a student learns from a teacher's softened outputs and from the labels, on the training engine.

The student is an existing model that shares the teacher's vocabulary (and, for a classifier, its labels), or is
made from the teacher: the same config with fewer layers, initialised from a chosen subset of the teacher's
layers (every other one by default, as DistilBERT was). The loss of a batch is

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross-entropy(student, labels)

summed over the batch's targets (padding and masked targets never count), plus, optionally, a hidden-state loss
between mapped layers. The teacher runs without gradients, in eval mode, under the student's precision; only the
student trains and is checkpointed. The run ends with a report: teacher and student side by side on the
validation data (the task's metrics, through the shared evaluation code), parameters, size and inference speed.
"""

from __future__ import annotations

import time
from pathlib import Path

from llmtool import data as data_lib
from llmtool import evaluation, models, pruning, recipe_data, training
from llmtool.config import DistillRecipe
from llmtool.errors import UsageError, naming
from llmtool.layers import kept_layers, student_from_teacher
from llmtool.model_facts import auto_model_class, label_names, label_settings
from llmtool.runlog import Progress
from llmtool.tasks import CAUSAL_LM, CLASSIFICATION
from llmtool.training import TrainResult

TEACHER_NAMES = {"model": "teacher.name", "task": "task", "base_model": "teacher.base_model"}
STUDENT_NAMES = {"model": "student.name", "task": "task"}
# The metric that says how much of the teacher a student keeps, and whether higher is better.
MAIN_METRIC = {CLASSIFICATION: ("accuracy", True), CAUSAL_LM: ("perplexity", False)}


# ---------------------------------------------------------------- the loss


def targets_of(task: str, logits, labels):
    """The logits and labels of the positions that count: every row of a classifier; the shifted, unmasked
    positions of a causal LM; the unmasked target positions of a seq2seq model."""
    if task == CLASSIFICATION:
        return logits, labels
    if task == CAUSAL_LM:
        logits, labels = logits[:, :-1], labels[:, 1:]
    keep = labels != -100
    return logits[keep], labels[keep]


def kd_loss(task: str, student_logits, teacher_logits, labels, temperature: float, alpha: float):
    """Sum over the targets of alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)."""
    import torch.nn.functional as F

    student, gold = targets_of(task, student_logits.float(), labels)
    teacher, _ = targets_of(task, teacher_logits.float(), labels)
    loss = (1 - alpha) * F.cross_entropy(student, gold, reduction="sum") if alpha < 1 else 0.0
    if alpha > 0:
        soft = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                        log_target=True, reduction="sum")
        loss = loss + alpha * temperature ** 2 * soft
    return loss


def hidden_state_loss(kind: str, student_states, teacher_states, layer_map: list[tuple[int, int]], mask,
                      n_targets: int, project=None):
    """Distance between each mapped pair of hidden states (cosine: 1 - cos; mse: mean over the width) over the
    real tokens, averaged per token and scaled to the batch's target count (the engine divides by that count).
    A student narrower or wider than its teacher has its states mapped to the teacher's width by `project` (a
    module taking and returning the list of the pairs' student states) first."""
    import torch.nn.functional as F

    real = mask.bool()
    mine = [student_states[s][real] for s, _ in layer_map]
    if project is not None:
        mine = project(mine)
    total = 0.0
    for a, (_, t) in zip(mine, layer_map):
        a, b = a.float(), teacher_states[t][real].float()
        if kind == "cosine":
            total = total + (1 - F.cosine_similarity(a, b, dim=-1)).sum()
        else:
            total = total + ((a - b) ** 2).mean(dim=-1).sum()
    return total * n_targets / (real.sum() * len(layer_map))


def projections(count: int, student_width: int, teacher_width: int):
    """Learned linear maps from the student's width to the teacher's, one per matched pair of layers: one module,
    so that the engine trains, synchronises and checkpoints them together."""
    import torch

    class Projections(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.maps = torch.nn.ModuleList(torch.nn.Linear(student_width, teacher_width) for _ in range(count))

        def forward(self, states: list):
            return [project(x) for project, x in zip(self.maps, states)]

    return Projections()


# ---------------------------------------------------------------- students with the teacher's vocabulary


def vocabulary_difference(teacher_tokenizer, student_tokenizer) -> str | None:
    """What differs between two vocabularies, token by token; None when they are the same."""
    a, b = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if a == b:
        return None
    only_teacher, only_student = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    moved = sorted(t for t in set(a) & set(b) if a[t] != b[t])
    parts = []
    if only_teacher:
        parts.append(f"{len(only_teacher)} tokens only in the teacher's (e.g. {only_teacher[0]!r})")
    if only_student:
        parts.append(f"{len(only_student)} only in the student's (e.g. {only_student[0]!r})")
    if moved:
        parts.append(f"{len(moved)} with other ids (e.g. {moved[0]!r}: {a[moved[0]]} vs {b[moved[0]]})")
    return ", ".join(parts)


# ---------------------------------------------------------------- the job


def recipe_inputs(recipe: DistillRecipe) -> dict[str, str | None]:
    return {"data.train": recipe.data.train, "data.validation": recipe.data.validation,
            "teacher.name": recipe.teacher.name, "teacher.base_model": recipe.teacher.base_model,
            "student.name": recipe.student.name}


def distill(recipe: DistillRecipe, *, overwrite: bool = False, resume: bool = False,
            progress: Progress | None = None) -> TrainResult:
    """Run a distill recipe to the end; the result's `report` compares teacher and student."""
    with training.Run(recipe.train, recipe.output_dir, verb="distill", recipe=recipe.to_dict(),
                      inputs=recipe_inputs(recipe), overwrite=overwrite, resume=resume or recipe.resume,
                      progress=progress) as run:
        return run.fit(build_job(recipe, run))


def _load_teacher(recipe: DistillRecipe):
    with naming(TEACHER_NAMES):
        loaded = models.load_model(recipe.teacher.name, task=recipe.task, device="cpu", dtype="fp32",
                                   trust_remote_code=recipe.teacher.trust_remote_code,
                                   base_model=recipe.teacher.base_model)
    return loaded.tokenizer, loaded.model


def _load_student(recipe: DistillRecipe, teacher, tokenizer, checkpoint: Path | None):
    """The student: from a checkpoint when resuming, an existing model, or made from the teacher. Returns (student,
    the teacher layers it was made from, or None for a given student)."""
    task = recipe.task
    made = recipe.student.name is None
    if checkpoint is not None:
        kept = kept_layers(teacher.config.num_hidden_layers, recipe.student.layers) if made else None
        return auto_model_class(task).from_pretrained(checkpoint, use_safetensors=True), kept
    if made:
        return student_from_teacher(teacher, recipe.student.layers)
    with naming(STUDENT_NAMES):
        difference = vocabulary_difference(tokenizer, models.load_tokenizer(recipe.student.name))
    if difference:
        raise UsageError(f"student '{recipe.student.name}' and teacher '{recipe.teacher.name}' do not share a "
                         f"vocabulary: {difference}; distil into a student with the teacher's tokenizer, or build one "
                         "from the teacher with student.layers")
    heads = {}
    if task == CLASSIFICATION:
        labels = label_names(teacher.config)
        heads = label_settings(labels)
        with naming(STUDENT_NAMES):
            saved = models.model_config(recipe.student.name)
        if models.head_status(saved, task) == models.HEAD_SAVED and label_names(saved) != labels:
            raise UsageError(f"student '{recipe.student.name}' classifies into {label_names(saved)}, the "
                             "teacher into "
                             f"{labels}: a student must have the teacher's labels, in the same order")
    with naming(STUDENT_NAMES):
        loaded = models.load_model(recipe.student.name, task=task, device="cpu", dtype="fp32", allow_new_head=True,
                                   **heads)
    if loaded.model.config.vocab_size != teacher.config.vocab_size:
        raise UsageError(f"student '{recipe.student.name}' scores {loaded.model.config.vocab_size} tokens, the "
                         f"teacher {teacher.config.vocab_size}: their outputs cannot be compared")
    return loaded.model, None


# The config key of a pruned student that lists the teacher layers it kept, in order (config.json keeps it).
TEACHER_LAYERS = "pruned_from_layers"


def _layer_map(student, teacher, kept: list[int] | None) -> list[tuple[int, int]]:
    """Hidden-state pairs (student index, teacher index), counting the embeddings as 0: a student made from the
    teacher matches each layer with the one it was copied from; another, evenly spread layers."""
    s, t = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    if kept is not None:
        return [(i + 1, k + 1) for i, k in enumerate(kept)]
    return [(i, round(i * t / s)) for i in range(1, s + 1)]


def build_job(recipe: DistillRecipe, run: training.Run) -> training.Job:
    """The distill job: the recipe's data tokenized by the teacher's tokenizer, the student (made, given, pruned,
    or from the checkpoint being resumed), the distillation loss, and the teacher-vs-student report."""
    task, data = recipe.task, recipe.data
    train_rows, validation_rows = recipe_data.load_data(recipe, run.accelerator, run.progress.message)
    tokenizer, teacher = _load_teacher(recipe)
    labels = recipe_data.labels(recipe, train_rows, validation_rows)
    if labels is not None:
        labels, _ = recipe_data.saved_label_order(teacher.config, labels, recipe.teacher.name, new_head=False)
    data_lib.pad_on_the_right(tokenizer, teacher)
    tokenized = recipe_data.tokenize(recipe, tokenizer, train_rows, validation_rows, labels, run.accelerator)
    collator = data_lib.Collator(task, tokenizer, model=teacher)
    teacher.to(run.accelerator.device).eval().requires_grad_(False)
    student, kept = _student(recipe, run, teacher, tokenizer, tokenized.train, collator)
    data_lib.pad_on_the_right(tokenizer, student)
    student.train()
    hidden = recipe.distill.hidden_loss
    layer_map = _layer_map(student, teacher, kept) if hidden else []
    aux = None
    if hidden and student.config.hidden_size != teacher.config.hidden_size:
        # they train with the student and are checkpointed with it, but are not part of the saved student
        aux = projections(len(layer_map), student.config.hidden_size, teacher.config.hidden_size)
    validation = tokenized.validation

    def report(accelerator, trained) -> dict:
        return compare(task, teacher, accelerator.unwrap_model(trained), tokenizer, validation, collator,
                       recipe.train.eval_batch_size or recipe.train.batch_size, accelerator, data.max_target_length)

    recover = recipe.prune is None or recipe.prune.recover
    job = training.Job(task=task, model=student, tokenizer=tokenizer, train_set=tokenized.train,
                       validation_set=validation, collator=collator, loss=None,
                       report=report if validation is not None else None, max_steps=None if recover else 0,
                       aux=aux, group_by_length=data.group_by_length,
                       fixed_length=data.packing or data.pad_to_max_length, max_new_tokens=data.max_target_length)
    job.loss = _distillation_loss(task, recipe.distill, teacher, layer_map, job)
    return job


def _student(recipe: DistillRecipe, run: training.Run, teacher, tokenizer, train_set, collator):
    """(student, the teacher layers it keeps, or None): pruned from the teacher, or as `_load_student` says."""
    main = run.accelerator.is_main_process
    if recipe.prune is not None and run.checkpoint is None:
        return _pruned(recipe, teacher, train_set, collator, run.accelerator.device, run.progress if main else None)
    if recipe.prune is not None:  # resuming a pruned student: the checkpoint holds it, and its layers' sources
        student, _ = _load_student(recipe, teacher, tokenizer, run.checkpoint)
        return student, getattr(student.config, TEACHER_LAYERS, None)
    return _load_student(recipe, teacher, tokenizer, run.checkpoint)


def _distillation_loss(task: str, settings, teacher, layer_map: list[tuple[int, int]], job: training.Job):
    """(student, batch) -> the batch's distillation loss: the teacher's soft targets and the labels (kd_loss),
    plus the hidden-state loss when the distill section asks for one (through `job.aux`, the projections as the
    engine prepared them)."""
    import torch

    hidden = settings.hidden_loss

    def loss(model, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if task != CLASSIFICATION and task != CAUSAL_LM:
            inputs["labels"] = batch["labels"]  # seq2seq: the decoder's inputs come from the labels
        with torch.no_grad():
            taught = teacher(**inputs, output_hidden_states=bool(hidden))
        out = model(**inputs, output_hidden_states=bool(hidden))
        total = kd_loss(task, out.logits, taught.logits, batch["labels"], settings.temperature, settings.alpha)
        if hidden:
            states, teacher_states, mask = _hidden_states(task, out, taught, batch)
            n_targets = targets_of(task, out.logits, batch["labels"])[1].numel()
            total = total + settings.hidden_weight * hidden_state_loss(hidden, states, teacher_states, layer_map,
                                                                       mask, n_targets, job.aux)
        return total

    return loss


def _pruned(recipe: DistillRecipe, teacher, train_set, collator, device, progress: Progress | None):
    """The teacher pruned as the prune section says, ranked on the first training batches."""
    settings = recipe.prune
    size = recipe.train.batch_size
    inputs = data_lib.model_inputs(train_set)
    rows = list(range(min(len(train_set), size * settings.calibration_batches)))
    batches = [dict(collator(inputs, rows[i:i + size])) for i in range(0, len(rows), size)]
    if not teacher.config.is_encoder_decoder:
        batches = [{k: v for k, v in b.items() if k != "labels"} for b in batches]  # no loss needed to rank
    student, kept, width = pruning.prune(teacher, batches, device, settings.layers, settings.mlp_keep)
    student.to("cpu")
    if settings.layers:
        setattr(student.config, TEACHER_LAYERS, kept)  # saved with every checkpoint, so a resumed run maps alike
    if progress is not None:
        dropped = sorted(set(range(teacher.config.num_hidden_layers)) - set(kept))
        progress.message(f"pruned: layers {dropped or 'none'} dropped (kept {kept}), MLP width {width} "
                         f"(measured on {len(batches)} batches of {size})")
    return student, kept if settings.layers else None


def _hidden_states(task: str, out, taught, batch):
    """The hidden states to match and the mask of the real tokens: the decoder's for seq2seq."""
    if task == CAUSAL_LM or task == CLASSIFICATION:
        return out.hidden_states, taught.hidden_states, batch["attention_mask"]
    return out.decoder_hidden_states, taught.decoder_hidden_states, batch["labels"] != -100


# ---------------------------------------------------------------- the report


def parameter_count_and_bytes(model) -> tuple[int, int]:
    """Parameters, and bytes of weights as saved (tied weights once)."""
    seen, count, size = set(), 0, 0
    for tensor in model.state_dict().values():
        key = (tensor.data_ptr(), tensor.shape)
        if key in seen:
            continue
        seen.add(key)
        size += tensor.numel() * tensor.element_size()
    for parameter in model.parameters():  # parameters() already yields a tied weight once
        count += parameter.numel()
    return count, size


def examples_per_second(model, dataset, collator, batch_size: int, accelerator, repeats: int = 2) -> float:
    """Inference speed on this process's share of `dataset`: the best of `repeats` passes, after a warm-up batch."""
    import torch

    lengths = data_lib.column(dataset, "length")
    inputs = data_lib.model_inputs(dataset)
    batches = data_lib.eval_batches(lengths, batch_size, accelerator.process_index, accelerator.num_processes)
    if not batches:
        return 0.0
    def forward(indices):
        batch = collator(inputs, indices).to(accelerator.device)
        # an encoder-decoder's forward needs its decoder inputs: the labels give them (teacher forcing)
        keep = ("labels",) if model.config.is_encoder_decoder else ()
        model(**{k: v for k, v in batch.items() if k != "labels" or k in keep})

    def synchronize():
        if accelerator.device.type == "cuda":
            torch.cuda.synchronize()

    was_training = model.training
    model.eval()
    best = float("inf")
    with torch.no_grad(), accelerator.autocast():
        forward(batches[0])  # warm-up
        for _ in range(repeats):
            synchronize()
            start = time.perf_counter()
            for indices in batches:
                forward(indices)
            synchronize()
            best = min(best, time.perf_counter() - start)
    model.train(was_training)
    return sum(len(b) for b in batches) / best


def compare(task: str, teacher, student, tokenizer, validation, collator, batch_size: int, accelerator,
            max_new_tokens: int) -> dict:
    """Teacher and student side by side on the validation rows: the task's metrics (shared evaluation code),
    parameters, size of the weights, inference speed; and the student's share of the teacher's main metric."""
    rows = {}
    for role, model in (("teacher", teacher), ("student", student)):
        scores = evaluation.evaluate_model(task, model, tokenizer, validation, collator, batch_size, accelerator,
                                           max_new_tokens)
        count, size = parameter_count_and_bytes(model)
        rows[role] = {**scores, "parameters": count, "size_mb": round(size / 2**20, 3),
                      "examples_per_second": examples_per_second(model, validation, collator, batch_size,
                                                                 accelerator)}
    teacher.eval()  # evaluate_model leaves a model in training mode
    report = {"teacher": rows["teacher"], "student": rows["student"],
              "speedup": rows["student"]["examples_per_second"] / max(rows["teacher"]["examples_per_second"], 1e-9),
              "size_ratio": rows["student"]["size_mb"] / max(rows["teacher"]["size_mb"], 1e-9)}
    if task in MAIN_METRIC:
        name, higher_better = MAIN_METRIC[task]
        t, s = rows["teacher"][name], rows["student"][name]
        report["metric"] = name
        report["kept"] = (s / t if higher_better else t / s) if t and s else None
    return report
