"""Embeddings: one vector per text, pooled from a model's last hidden states.

How a model pools is the model's to say where it says it: a sentence-transformers directory lists its modules in
modules.json, and its Pooling module's config (1_Pooling/config.json: mean, cls, max, mean of the square root of
the length, last token; several are concatenated, in sentence-transformers' order) and Normalize module are
honoured, with its Transformer's max_seq_length and do_lower_case. Elsewhere the caller chooses (`--pooling`):
by default the mean over real tokens for an encoder, the last real token for a decoder, whose earlier positions
never see the end of the text. Texts are tokenized once and run in length-sorted batches with dynamic padding
(on the right: a decoder's real tokens then never attend to padding); vectors come back in input order, float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from llmtool import classification, models
from llmtool.data import pad_on_the_right, sorted_batches
from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.model_facts import check_json_file, damaged, position_limit
from llmtool.tasks import CAUSAL_LM

if TYPE_CHECKING:
    import numpy as np

# What --pooling offers; a sentence-transformers model may also pool by "max" and "mean_sqrt_len".
POOLINGS = ("mean", "cls", "last")
# sentence-transformers' pooling modes that llmtool runs, by their names there (config key "pooling_mode", or the
# older flags below), with the names used here.
ST_MODES = {"cls": "cls", "max": "max", "mean": "mean", "mean_sqrt_len_tokens": "mean_sqrt_len", "lasttoken": "last"}
# The older config's flags, in the order sentence-transformers concatenates the modes they turn on.
ST_MODE_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                 "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                 "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
# The sentence-transformers modules llmtool runs, by class name (the module path before it differs by version).
ST_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class Pooling:
    """How token vectors become one vector: `modes` concatenated, then scaled to length 1 if `normalize`; texts
    cut to `max_length` tokens (None: the model's limit) and lower-cased first if `lower_case`. `origin` says
    who chose: the model's modules.json, or the caller."""

    modes: tuple[str, ...]
    normalize: bool
    max_length: int | None = None
    lower_case: bool = False
    origin: str = "option"

    def settings(self) -> dict:
        """As recorded with the vectors it made (an index), so that queries are embedded alike."""
        return {"pooling": list(self.modes), "normalize": self.normalize, "max_length": self.max_length,
                "lower_case": self.lower_case}

    def describe(self) -> str:
        return "+".join(self.modes) + " pooling" + (", normalized" if self.normalize else "")


def _model_file(source: str, relative: str) -> Path | None:
    """A file of the model at `source` (a directory, or a Hub id's files in the cache or fetched as transformers
    fetches them), or None where it has none."""
    if Path(source).is_dir():
        path = Path(source) / relative
        return path if path.is_file() else None
    from transformers.utils import cached_file

    try:
        found = cached_file(source, relative, _raise_exceptions_for_missing_entries=False,
                            _raise_exceptions_for_connection_errors=False)
    except OSError:
        return None
    return Path(found) if found else None


def sentence_transformers_pooling(name: str, source: str) -> Pooling | None:
    """The pooling a sentence-transformers model at `source` declares (modules.json), or None for a plain
    transformers model. A module llmtool does not run (Dense, a router, ...) is refused: its vectors would differ
    from the model's own."""
    listing = _model_file(source, "modules.json")
    if listing is None:
        return None
    modules = check_json_file(listing)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise damaged(listing, "is not a list of modules, each with a type")
    kinds = {str(m["type"]).rsplit(".", 1)[-1]: str(m.get("path", "")) for m in modules}
    foreign = [f"{kind} ('{path}')" for kind, path in kinds.items() if kind not in ST_MODULES]
    if foreign:
        raise LlmtoolError(f"model '{name}' is a sentence-transformers model with modules llmtool does not run: "
                           f"{', '.join(foreign)}; embed with sentence-transformers itself")
    if kinds.get("Transformer", "") not in ("", ".") or "Pooling" not in kinds:
        raise LlmtoolError(f"model '{name}' is a sentence-transformers model whose transformer is not at its top "
                           "level or that has no Pooling module; llmtool runs those that have both")
    modes = _pooling_modes(name, source, kinds["Pooling"])
    transformer = _model_file(source, "sentence_bert_config.json")
    settings = check_json_file(transformer) if transformer is not None else {}
    max_length = settings.get("max_seq_length") if isinstance(settings, dict) else None
    return Pooling(modes=modes, normalize="Normalize" in kinds,
                   max_length=max_length if isinstance(max_length, int) and max_length > 0 else None,
                   lower_case=bool(isinstance(settings, dict) and settings.get("do_lower_case")),
                   origin="modules.json")


def _pooling_modes(name: str, source: str, folder: str) -> tuple[str, ...]:
    path = _model_file(source, f"{folder}/config.json")
    config = check_json_file(path) if path is not None else {}
    if not isinstance(config, dict):
        raise damaged(path, "is not a JSON object")
    given = config.get("pooling_mode")
    if given is None:
        given = [mode for flag, mode in ST_MODE_FLAGS.items() if config.get(flag)] or ["mean"]
    given = [given] if isinstance(given, str) else list(given)
    unknown = [mode for mode in given if mode not in ST_MODES]
    if unknown:
        raise LlmtoolError(f"model '{name}' pools by {', '.join(map(str, unknown))} ({folder}/config.json), which "
                           f"llmtool does not run (it runs {', '.join(ST_MODES)}); embed with sentence-transformers")
    return tuple(ST_MODES[mode] for mode in given)


def is_decoder(config) -> bool:
    """A decoder-only model (GPT-2 style), whose last token is the only one that has seen the whole text."""
    try:
        return models.infer_task(config) == CAUSAL_LM
    except LlmtoolError:  # a family llmtool cannot place: take it for an encoder
        return False


def choose_pooling(name: str, source: str, config, pooling: str | None, normalize: bool) -> Pooling:
    """The model's own pooling where it declares one (a `pooling` that differs is refused; `normalize` adds
    normalization to a model that has none), else `pooling`, else mean (encoders) or last token (decoders)."""
    own = sentence_transformers_pooling(name, source)
    if own is not None:
        if pooling is not None and (pooling,) != own.modes:
            raise SettingError(f"model '{literal(name)}' pools its vectors by {'+'.join(own.modes)} (its "
                               "modules.json); drop {pooling}, or give another model")
        return own if own.normalize or not normalize else Pooling(own.modes, True, own.max_length, own.lower_case,
                                                                   own.origin)
    if pooling is not None and pooling not in POOLINGS:
        raise SettingError(f"unknown {{pooling}} '{literal(pooling)}'; choose one of {', '.join(POOLINGS)}")
    default = "last" if is_decoder(config) else "mean"
    return Pooling(modes=(pooling or default,), normalize=normalize, origin="option" if pooling else "default")


@dataclass
class Encoder:
    """A model loaded to embed texts, with how it pools and the longest input it takes."""

    lm: models.LoadedModel
    pooling: Pooling
    max_length: int
    model: str  # the model's identity (models.model_identity), as an index records it

    @property
    def dimension(self) -> int:
        return self.lm.model.config.hidden_size * len(self.pooling.modes)

    def settings(self) -> dict:
        """What made its vectors: an index records this, and its queries are embedded with the same."""
        return {"model": self.model, **self.pooling.settings(), "max_length": self.max_length}


def load_encoder(name: str, pooling: str | Pooling | None = None, normalize: bool = False, *,
                 device: str | None = None, dtype: str = "auto", trust_remote_code: bool = False) -> Encoder:
    """The model's body (no head), pooling as `choose_pooling` decides, or exactly as a given `Pooling` says (the
    settings an index recorded)."""
    lm = models.load_base_model(name, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if not isinstance(pooling, Pooling):
        pooling = choose_pooling(name, lm.source, lm.model.config, pooling, normalize)
    pad_on_the_right(lm.tokenizer, lm.model)
    limit = classification.max_input_length(lm)
    positions = position_limit(lm.model.config)
    max_length = min(pooling.max_length or limit, positions or limit)
    return Encoder(lm=lm, pooling=pooling, max_length=max_length, model=models.model_identity(name))


@dataclass
class Embedded:
    vectors: "np.ndarray"  # (texts, dimension) float32, in input order
    truncated: int  # texts cut to the encoder's max_length
    tokens: list[int]  # each text's tokens, as the model saw it (after any cut)


def embed(encoder: Encoder, texts: list[str], batch_size: int = 32,
          on_batch: Callable[[int], None] | None = None) -> Embedded:
    """One vector per text. Batches are formed by length, so padding is small; batching changes speed, not
    vectors (padding is masked out of attention and pooling). `on_batch(rows)` is told after each batch."""
    import numpy as np
    import torch

    lm, pooling = encoder.lm, encoder.pooling
    if pooling.lower_case:
        texts = [text.lower() for text in texts]
    encoded = lm.tokenizer(texts, truncation=True, max_length=encoder.max_length, verbose=False)
    truncated = sum(1 for e in encoded.encodings if e.overflowing) if encoded.encodings else 0
    columns = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    lengths = [len(ids) for ids in columns["input_ids"]]
    body = lm.model.get_encoder() if getattr(lm.model.config, "is_encoder_decoder", False) else lm.model
    vectors = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    with torch.inference_mode():
        for batch in sorted_batches(lengths, batch_size):
            inputs = lm.tokenizer.pad({k: [v[i] for i in batch] for k, v in columns.items()},
                                      return_tensors="pt").to(lm.device)
            hidden = body(**inputs).last_hidden_state
            pooled = pool(hidden, inputs["attention_mask"], pooling.modes)
            if pooling.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            vectors[batch] = pooled.cpu().numpy()
            if on_batch is not None:
                on_batch(len(batch))
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise LlmtoolError(f"the model gave a vector with NaN or infinite values for text {bad[0] + 1} (of "
                           f"{len(texts)}); its weights are broken, or --dtype is too narrow for it: try fp32")
    return Embedded(vectors=vectors, truncated=truncated, tokens=lengths)


def pool(hidden, mask, modes: tuple[str, ...]):
    """Token vectors (batch, tokens, width) pooled over the real tokens (`mask` 1), as sentence-transformers'
    Pooling computes each mode (in float32), concatenated in `modes` order."""
    import torch

    hidden = hidden.float()
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    parts = []
    for mode in modes:
        if mode == "mean":
            parts.append((hidden * weights).sum(dim=1) / counts)
        elif mode == "mean_sqrt_len":
            parts.append((hidden * weights).sum(dim=1) / torch.sqrt(counts))
        elif mode == "max":
            parts.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode == "cls":  # the first real token (padding is on the right)
            parts.append(hidden[:, 0])
        elif mode == "last":
            last = mask.sum(dim=1).clamp(min=1) - 1
            parts.append(hidden[torch.arange(hidden.size(0), device=hidden.device), last])
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")
    return torch.cat(parts, dim=-1)

