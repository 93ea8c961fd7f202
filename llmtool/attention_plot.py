"""Attention maps drawn as heatmaps labelled with their tokens: a grid of maps (a layer's heads) or one, sharing
one colour scale, as the bytes of a PNG, SVG or PDF file.

The figure's size follows from the maps alone (`figure_size`), so a picture's pixels are known before it is
drawn; matplotlib is imported only to draw, and drawn on its Agg canvas without pyplot, whose global state a
library has no business changing.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from llmtool.attention import SELF, Attention, AttentionMap
from llmtool.errors import SettingError, literal

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}  # the output's suffix -> matplotlib's format
DPI = 100
# A map's side: a quarter inch a token leaves room for an 8-point label; between 2 inches (a map of two tokens
# stays readable) and 10 (past that, labels thin out rather than the picture growing without end).
TOKEN_INCHES, MIN_MAP_INCHES, MAX_MAP_INCHES = 0.25, 2.0, 10.0
LABEL_INCHES = 1.25  # beside each map: its token labels and title
COLORBAR_INCHES, TITLE_INCHES = 1.0, 0.5
COLUMNS = 4  # maps a row
FONT_POINTS, MIN_FONT_POINTS = 8.0, 5.0

PART_TITLES = {SELF: "self-attention", "encoder": "encoder self-attention", "decoder": "decoder self-attention",
               "cross": "cross-attention (decoder tokens over encoder tokens)"}


def picture_format(path: Path) -> str:
    """The format a picture at `path` is written in, from its suffix; errors name the setting `output`."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        *others, last = FORMATS
        raise SettingError(f"{{output}} '{literal(path)}' should end in {', '.join(others)} or {last}: the picture's "
                           "format is read from it") from None


def _map_inches(tokens: int) -> float:
    return min(max(TOKEN_INCHES * tokens, MIN_MAP_INCHES), MAX_MAP_INCHES)


def grid(count: int) -> tuple[int, int]:
    """Rows and columns of a figure of `count` maps."""
    columns = min(count, COLUMNS)
    return math.ceil(count / columns), columns


def figure_size(count: int, queries: int, keys: int) -> tuple[float, float]:
    """Width and height in inches of a figure of `count` maps of `queries` rows and `keys` columns."""
    rows, columns = grid(count)
    return (columns * (_map_inches(keys) + LABEL_INCHES) + COLORBAR_INCHES,
            rows * (_map_inches(queries) + LABEL_INCHES) + TITLE_INCHES)


def _label(set_ticks, set_labels, tokens: list[str], inches: float, **text) -> None:
    """Every token's label where it fits at a readable size; else every n-th one."""
    points = min(FONT_POINTS, 0.7 * 72 * inches / len(tokens))
    step = 1 if points >= MIN_FONT_POINTS else math.ceil(MIN_FONT_POINTS / points)
    positions = range(0, len(tokens), step)
    set_ticks(positions)
    set_labels([tokens[i] for i in positions], fontsize=max(points, MIN_FONT_POINTS), parse_math=False, **text)


def render(attention: Attention, shown: list[AttentionMap], model: str, picture: str = "png") -> bytes:
    """The picture of the maps `shown` from `attention` of `model` (its name, for the title), in format
    `picture` (one of FORMATS' values)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    queries, keys = attention.query_tokens, attention.key_tokens
    figure = Figure(figsize=figure_size(len(shown), len(queries), len(keys)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    rows, columns = grid(len(shown))
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    top = max(float(m.weights.max()) for m in shown)
    for i, (ax, attention_map) in enumerate(zip(axes, shown)):
        image = ax.imshow(attention_map.weights.numpy(), cmap="viridis", vmin=0.0, vmax=top, aspect="auto",
                          interpolation="nearest")
        ax.set_title(attention_map.title, fontsize=FONT_POINTS + 1)
        _label(ax.set_xticks, ax.set_xticklabels, keys, _map_inches(len(keys)), rotation=90)
        _label(ax.set_yticks, ax.set_yticklabels, queries, _map_inches(len(queries)))
        if i % columns == 0:
            ax.set_ylabel("query (attending)", fontsize=FONT_POINTS)
        if i >= len(shown) - columns:
            ax.set_xlabel("key (attended to)", fontsize=FONT_POINTS)
    for ax in axes[len(shown):]:
        ax.set_axis_off()
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="attention weight")
    figure.suptitle(f"{model}: {PART_TITLES[attention.part]}", fontsize=FONT_POINTS + 3, parse_math=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=picture, dpi=DPI)
    return buffer.getvalue()
