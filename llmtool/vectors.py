"""Files of embeddings, and the index that `llmtool search` reads.

Every file is written chunk by chunk as vectors arrive (so a million rows never sit in memory as Python lists),
through the output guard (results_file.OutputFile: claimed before anything loads, written beside the output and
renamed into place at the end, so a stopped run leaves what was there). The output's name says its form:

  NAME.jsonl                  {"id", "text", "embedding"} a line
  NAME.npy                    the vectors, float32 (texts x dimension), and beside them NAME.ids.jsonl: {"id",
                              "text"} a line, in the same order
  NAME.index, NAME.safetensors  an index: one safetensors file holding the vectors (float32), their norms, the
                              texts and ids, and the settings that made them (model, pooling, normalization, max
                              length); with an HNSW graph (faiss) for approximate search where asked

An index is opened memory-mapped (numpy.memmap at the tensors' offsets) after its header is checked against the
file's size, so a cut-short or foreign file is one clear error; exact cosine search reads it in chunks of rows,
for a batch of queries at a time, keeping the best `top_k` of each query as it goes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmtool import __version__
from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.results_file import OutputFile

if TYPE_CHECKING:
    import numpy as np

FORMATS = {".jsonl": "jsonl", ".npy": "npy", ".index": "index", ".safetensors": "index"}
IDS_SUFFIX = ".ids.jsonl"  # beside NAME.npy: its rows' ids and texts
INDEX_FORMAT = "llmtool-index/1"
METADATA_KEY = "llmtool_index"  # the safetensors metadata entry that holds an index's settings (JSON)
# Index rows scored at a time by exact search: 32768 x 384 float32 is 48 MB read per chunk, and the scores of 64
# queries over it 8 MB; large enough that numpy's matrix product runs at full speed.
SEARCH_CHUNK_ROWS = 32768
# HNSW (faiss IndexHNSWFlat, inner product over normalized vectors): links per node, and the candidate list while
# building and while searching. tests/test_search.py measures the recall these give against exact search.
HNSW_LINKS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Room kept in an index's header for the graph's final size, which is known only once the graph is written.
HEADER_SPARE = 64
DTYPES = {"F32": ("<f4", 4), "I64": ("<i8", 8), "U8": ("u1", 1)}


def output_format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def ids_path(path: Path) -> Path:
    """The ids and texts beside NAME.npy: NAME.ids.jsonl."""
    return path.with_name(path.stem + IDS_SUFFIX)


def have_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def vector_lines(vectors: "np.ndarray") -> list[str]:
    """Each vector as its numbers, '%.9g' (which gives a float32 back exactly)."""
    row = ",".join(["%.9g"] * vectors.shape[1])
    return [row % tuple(v) for v in vectors.tolist()]


def json_lines(ids: list, texts: list[str], vectors: "np.ndarray") -> str:
    """{"id", "text", "embedding"} records, one a line."""
    return "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False)[:-1] + f', "embedding": [{v}]}}\n'
                   for i, t, v in zip(ids, texts, vector_lines(vectors)))


class _JsonLinesWriter:
    def __init__(self, output: OutputFile):
        self.output = output

    def add(self, start: int, ids: list, texts: list[str], vectors: "np.ndarray") -> None:
        self.output.handle.write(json_lines(ids, texts, vectors).encode("utf-8"))

    def commit(self) -> None:
        self.output.commit()


class _NpyWriter:
    """NAME.npy (a header that states rows x dimension, then the rows) and NAME.ids.jsonl beside it."""

    def __init__(self, output: OutputFile, sidecar: OutputFile, rows: int, dimension: int):
        import numpy as np

        self.output, self.sidecar = output, sidecar
        np.lib.format.write_array_header_1_0(output.handle, {"descr": "<f4", "fortran_order": False,
                                                             "shape": (rows, dimension)})

    def add(self, start: int, ids: list, texts: list[str], vectors: "np.ndarray") -> None:
        self.output.handle.write(vectors.astype("<f4", copy=False).tobytes())
        self.sidecar.handle.write("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                          for i, t in zip(ids, texts)).encode("utf-8"))

    def commit(self) -> None:
        self.sidecar.commit()
        self.output.commit()


def _offsets(lengths: "np.ndarray") -> "np.ndarray":
    import numpy as np

    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _header(tensors: dict[str, tuple[str, list[int], int, int]], metadata: dict, size: int | None = None) -> bytes:
    """A safetensors header (its length, then JSON), padded with spaces to `size` (or to a multiple of 8)."""
    entries = {"__metadata__": {METADATA_KEY: json.dumps(metadata, ensure_ascii=False)}}
    entries.update({name: {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
                    for name, (dtype, shape, begin, end) in tensors.items()})
    text = json.dumps(entries, ensure_ascii=False).encode("utf-8")
    if size is None:
        size = -(-(len(text) + HEADER_SPARE) // 8) * 8
    if len(text) > size:
        raise AssertionError("index header outgrew its room")
    return struct.pack("<Q", size) + text + b" " * (size - len(text))


class IndexWriter:
    """An index file, written in place as chunks arrive (each at its own offset, from sizes known up front: the
    rows, the dimension, every text's and id's length in UTF-8 bytes), then, with `graph`, an HNSW graph of the
    normalized vectors after them, its size put in the header last."""

    def __init__(self, output: OutputFile, settings: dict, dimension: int, text_lengths: "np.ndarray",
                 id_lengths: "np.ndarray | None", graph: bool = False):
        import numpy as np

        rows = len(text_lengths)
        self.output, self.rows, self.dimension = output, rows, dimension
        self.metadata = {"format": INDEX_FORMAT, **settings, "dimension": dimension, "rows": rows,
                         "ids": "column" if id_lengths is not None else "row", "llmtool": __version__}
        self.text_offsets = _offsets(text_lengths)
        self.id_offsets = _offsets(id_lengths) if id_lengths is not None else None
        layout = []  # (name, dtype, shape): 8-byte tensors first, so each starts aligned to its size
        if self.id_offsets is not None:
            layout.append(("id_offsets", "I64", [rows + 1]))
        layout += [("text_offsets", "I64", [rows + 1]), ("vectors", "F32", [rows, dimension]),
                   ("norms", "F32", [rows])]
        if self.id_offsets is not None:
            layout.append(("id_bytes", "U8", [int(self.id_offsets[-1])]))
        layout.append(("text_bytes", "U8", [int(self.text_offsets[-1])]))
        self.tensors, position = {}, 0
        for name, dtype, shape in layout:
            size = int(np.prod(shape)) * DTYPES[dtype][1]
            self.tensors[name] = (dtype, shape, position, position + size)
            position += size
        self.data_end = position
        if graph:
            self.tensors["hnsw"] = ("U8", [0], position, position)
        header = _header(self.tensors, self.metadata)
        self.base = len(header)
        self.fd = output.handle.fileno()
        self._write_at(0, header)
        for name, values in (("id_offsets", self.id_offsets), ("text_offsets", self.text_offsets)):
            if values is not None:
                self._write_at(self.base + self.tensors[name][2], values.astype("<i8").tobytes())
        self.graph = _new_graph(dimension) if graph else None

    def _write_at(self, offset: int, data: bytes) -> None:
        import os

        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def add(self, start: int, ids: list, texts: list[str], vectors: "np.ndarray") -> None:
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1).astype("<f4")
        self._write_at(self.base + self.tensors["vectors"][2] + start * self.dimension * 4, vectors.tobytes())
        self._write_at(self.base + self.tensors["norms"][2] + start * 4, norms.tobytes())
        for name, offsets, values in (("text_bytes", self.text_offsets, texts),
                                      ("id_bytes", self.id_offsets, ids)):
            if offsets is not None:
                data = "".join(map(str, values)).encode("utf-8")
                if len(data) != offsets[start + len(values)] - offsets[start]:  # the layout was made for others
                    raise AssertionError(f"{name} of rows {start}.. differ from the lengths the index was laid out by")
                self._write_at(self.base + self.tensors[name][2] + int(offsets[start]), data)
        if self.graph is not None:
            self.graph.add(_unit(vectors, norms))

    def commit(self) -> None:
        if self.graph is not None:
            import faiss

            handle = self.output.handle
            handle.seek(self.base + self.data_end)
            faiss.write_index(self.graph, faiss.PyCallbackIOWriter(handle.write))
            handle.flush()
            end = handle.tell() - self.base
            self.tensors["hnsw"] = ("U8", [end - self.data_end], self.data_end, end)
            self._write_at(0, _header(self.tensors, self.metadata, size=self.base - 8))
        self.output.commit()


def _unit(vectors: "np.ndarray", norms: "np.ndarray") -> "np.ndarray":
    """Vectors scaled to length 1 (a zero vector stays zero)."""
    import numpy as np

    return (vectors / np.where(norms > 0, norms, 1)[:, None]).astype(np.float32)


def _new_graph(dimension: int):
    import faiss

    graph = faiss.IndexHNSWFlat(dimension, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return graph


def claim(path: Path, inputs: dict, *, overwrite: bool) -> list[OutputFile]:
    """The files an output at `path` writes, claimed (results_file.OutputFile) before anything loads: the file,
    and NAME.ids.jsonl beside NAME.npy. The caller closes them."""
    outputs = [OutputFile(path, inputs, overwrite=overwrite)]
    if output_format(path) == "npy":
        try:
            outputs.append(OutputFile(ids_path(path), {**inputs, "vectors file": path}, overwrite=overwrite))
        except BaseException:
            outputs[0].close()
            raise
    return outputs


def open_writer(outputs: list[OutputFile], *, rows: int, dimension: int, settings: dict, text_lengths=None,
                id_lengths=None, graph: bool = False):
    """The writer of claimed `outputs`, in the form the first one's name says (see the module's docstring): it
    takes chunks (`add(start row, ids, texts, vectors)`) and puts the files in place at `commit`.
    `text_lengths` and `id_lengths` (UTF-8 bytes of each, in row order; None: the rows' numbers are their ids)
    are what an index is laid out by."""
    kind = output_format(outputs[0].path)
    if kind == "index" and outputs[0].target.exists() and not outputs[0].target.is_file():
        raise SettingError(f"{{output}} '{literal(outputs[0].path)}' is not a regular file (a pipe or a device): an "
                           "index is written at offsets and read back memory-mapped; give a file name")
    if kind == "jsonl":
        return _JsonLinesWriter(outputs[0])
    if kind == "npy":
        return _NpyWriter(outputs[0], outputs[1], rows, dimension)
    return IndexWriter(outputs[0], settings, dimension, text_lengths, id_lengths, graph)


# ---------------------------------------------------------------- reading an index


def _refuse(path: Path, what: str) -> LlmtoolError:
    return LlmtoolError(f"index '{path}' {what}; build it again with llmtool embed --output NAME.index")


@dataclass
class Index:
    """An index opened for search: its settings (the model and pooling that made it), and its tensors
    memory-mapped."""

    path: Path
    settings: dict
    vectors: "np.ndarray"  # (rows, dimension) float32, memory-mapped
    norms: "np.ndarray"
    text_offsets: "np.ndarray"
    text_bytes: "np.ndarray"
    id_offsets: "np.ndarray | None"
    id_bytes: "np.ndarray | None"
    graph_bytes: "np.ndarray | None"
    _graph = None

    @property
    def rows(self) -> int:
        return self.vectors.shape[0]

    def text(self, row: int) -> str:
        return bytes(self.text_bytes[self.text_offsets[row]:self.text_offsets[row + 1]]).decode("utf-8")

    def id(self, row: int) -> int | str:
        if self.id_offsets is None:
            return int(row)
        return bytes(self.id_bytes[self.id_offsets[row]:self.id_offsets[row + 1]]).decode("utf-8")

    def search(self, queries: "np.ndarray", top_k: int, approximate: bool = False):
        """The `top_k` rows most like each query by cosine similarity, best first (ties: lower row first):
        (scores, rows), each (queries, min(top_k, rows)). Exact unless `approximate` (the HNSW graph)."""
        top_k = min(top_k, self.rows)
        if approximate:
            return self._graph_search(queries, top_k)
        return exact_search(self.vectors, self.norms, queries, top_k)

    def require_graph(self) -> None:
        """Refuse approximate search of an index built without its graph."""
        if self.graph_bytes is None:
            raise SettingError(f"index '{literal(self.path)}' has no graph for approximate search; build it with "
                               "llmtool embed --approximate, or drop {approximate}")

    def _graph_search(self, queries, top_k):
        import faiss
        import numpy as np

        self.require_graph()
        if self._graph is None:
            self._graph = faiss.deserialize_index(np.asarray(self.graph_bytes))
        self._graph.hnsw.efSearch = max(HNSW_EF_SEARCH, top_k)
        queries = np.asarray(queries, dtype=np.float32)
        scores, rows = self._graph.search(_unit(queries, np.linalg.norm(queries, axis=1)), top_k)
        return scores, rows


def exact_search(vectors: "np.ndarray", norms: "np.ndarray", queries: "np.ndarray", top_k: int,
                 chunk_rows: int = SEARCH_CHUNK_ROWS):
    """Exact cosine search: `queries` (n, dimension) against `vectors` (rows, dimension) with their `norms`, a
    chunk of rows at a time (a memory-mapped index is read once, not held): (scores, rows) of the `top_k` best
    rows of each query, best first, ties in row order. A zero vector scores 0 against anything."""
    import numpy as np

    queries = np.asarray(queries, dtype=np.float32)
    units = _unit(queries, np.linalg.norm(queries.astype(np.float64), axis=1))
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk_rows):
        block = np.asarray(vectors[start:start + chunk_rows])
        lengths = np.asarray(norms[start:start + chunk_rows])
        scores = units @ block.T
        scores /= np.where(lengths > 0, lengths, np.inf)
        rows = np.broadcast_to(np.arange(start, start + len(block)), scores.shape)
        scores, rows = _keep_best(scores, rows, top_k)  # this chunk's best, then the best of them and the rest
        best_scores, best_rows = _keep_best(np.concatenate([best_scores, scores], axis=1),
                                            np.concatenate([best_rows, rows], axis=1), top_k)
    order = np.lexsort((best_rows, -best_scores), axis=-1)
    return np.take_along_axis(best_scores, order, axis=1), np.take_along_axis(best_rows, order, axis=1)


def _keep_best(scores, rows, top_k: int):
    import numpy as np

    if scores.shape[1] <= top_k:
        return scores, rows
    keep = np.argpartition(scores, scores.shape[1] - top_k, axis=1)[:, -top_k:]  # no negated copy of the scores
    return np.take_along_axis(scores, keep, axis=1), np.take_along_axis(rows, keep, axis=1)


def open_index(path: Path) -> Index:
    """The index at `path`, checked before use: a safetensors file whose header covers the file exactly (a file
    cut short, or with bytes past its end, is refused), written by llmtool embed, with tensors of the shapes its
    settings state."""
    import numpy as np

    if not path.exists():
        raise LlmtoolError(f"index '{path}' does not exist; build one with llmtool embed --output NAME.index")
    if path.is_dir():
        raise LlmtoolError(f"index '{path}' is a directory; give the index file llmtool embed wrote")
    size = path.stat().st_size
    with path.open("rb") as handle:
        start = handle.read(8)
        if len(start) < 8:
            raise _refuse(path, "is empty or cut short")
        (header_size,) = struct.unpack("<Q", start)
        if header_size > min(size, 100_000_000):
            raise _refuse(path, "is cut short, or is not an index (its first bytes are no safetensors header)")
        raw = handle.read(header_size)
    try:
        header = json.loads(raw)
        settings = json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError):
        raise _refuse(path, "is not an index written by llmtool embed (no index settings in its header)") from None
    if not isinstance(settings, dict) or settings.get("format") != INDEX_FORMAT:
        raise _refuse(path, f"is in another format ({settings.get('format') if isinstance(settings, dict) else '?'}"
                            f", not {INDEX_FORMAT})")
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    end = max((entry["data_offsets"][1] for entry in tensors.values()), default=0)
    expected = 8 + header_size + end
    if size < expected:
        raise _refuse(path, f"is cut short ({size:,} bytes of the {expected:,} its header describes)")
    if size > expected:
        raise _refuse(path, f"is damaged: {size - expected:,} bytes past the end its header describes")
    rows, dimension = settings.get("rows"), settings.get("dimension")
    with_ids = settings.get("ids") == "column"
    shapes = {"text_offsets": ("I64", [rows + 1]), "vectors": ("F32", [rows, dimension]), "norms": ("F32", [rows]),
              "text_bytes": ("U8", None)}
    if with_ids:
        shapes.update(id_offsets=("I64", [rows + 1]), id_bytes=("U8", None))
    arrays = {}
    for name, (dtype, shape) in {**shapes, "hnsw": ("U8", None)}.items():
        entry = tensors.get(name)
        if entry is None and name == "hnsw":
            continue
        if entry is None or entry.get("dtype") != dtype or (shape is not None and entry.get("shape") != shape):
            raise _refuse(path, f"is damaged: its '{name}' tensor is missing or of the wrong shape")
        begin, stop = entry["data_offsets"]
        numpy_dtype, width = DTYPES[dtype]
        count = (stop - begin) // width
        arrays[name] = (np.memmap(path, dtype=numpy_dtype, mode="r", offset=8 + header_size + begin,
                                  shape=tuple(entry["shape"]) if shape else (count,))
                        if count else np.empty(0, dtype=numpy_dtype))
    for name in ("text", "id"):
        offsets = arrays.get(f"{name}_offsets")
        if offsets is not None and (offsets[0] != 0 or offsets[-1] != len(arrays[f"{name}_bytes"])):
            raise _refuse(path, f"is damaged: its {name} offsets do not span its {name}s")
    return Index(path=path, settings=settings, vectors=arrays["vectors"], norms=arrays["norms"],
                 text_offsets=arrays["text_offsets"], text_bytes=arrays["text_bytes"],
                 id_offsets=arrays.get("id_offsets"), id_bytes=arrays.get("id_bytes"),
                 graph_bytes=arrays.get("hnsw"))


def utf8_lengths(column) -> "np.ndarray":
    """The UTF-8 size of each string of an Arrow column, computed by Arrow (no Python string per row)."""
    import numpy as np
    import pyarrow.compute as pc

    return np.asarray(pc.binary_length(column).to_numpy(zero_copy_only=False), dtype=np.int64)
