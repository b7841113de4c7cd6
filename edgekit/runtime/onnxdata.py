"""ONNX external data: find every reference before ONNX Runtime sees the bytes, and refuse
the ones that would read files from outside the model.

An ONNX tensor may keep its values in another file (``data_location: EXTERNAL`` and an
``external_data`` entry ``location``). ONNX Runtime resolves the location against the
model's folder, or against the working directory when the model comes from bytes, as a
bundle's variant does. A location such as ``../../etc/shadow``, ``/dev/zero`` or a
symbolic link out of the folder would make loading a model read whatever it names. So:

- a bundle's ONNX variant must carry its weights: any external reference is refused;
- a bare ``.onnx`` file may keep them next to it: relative locations without ``..``,
  inside its folder once symbolic links are resolved, regular files; edgekit reads them
  itself and hands them to ONNX Runtime in memory, so no path reaches the native loader.

The reader below walks the protobuf wire format in pure Python (the runtime does not
depend on the `onnx` package): every tensor of the model, including those in node
attributes, subgraphs, sparse initializers, functions and training graphs. Malformed
bytes raise `InputError`, never anything else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import InputError, UnsafeModelError

MAX_DEPTH = 64  # nested messages (subgraphs in subgraphs); ONNX Runtime's own limit is lower

# field numbers from onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ...)
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_TRAINING_GRAPHS = (1, 2)  # initialization, algorithm
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_FUNCTION_NODE = 7
_NODE_ATTRIBUTE = 5
_ATTR_TENSORS = (5, 10)  # t, tensors
_ATTR_GRAPHS = (6, 11)  # g, graphs
_ATTR_SPARSE = (22, 23)  # sparse_tensor, sparse_tensors
_SPARSE_TENSORS = (1, 2)  # values, indices
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclasses.dataclass(frozen=True)
class ExternalRef:
    """One tensor whose values live in another file."""

    tensor: str
    location: str


def _malformed(found: str) -> InputError:
    return InputError("ONNX model", expected="a protobuf ModelProto", found=found,
                      hint="the file is truncated or corrupt, or not an ONNX model; re-export it")


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise _malformed("a varint cut short")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _malformed("a varint longer than 10 bytes")


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of each field in data[start:end];
    for length-delimited fields the value is where the payload starts."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _malformed("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos, end)
            yield number, wire, value, pos
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise _malformed("a fixed-size field cut short")
            yield number, wire, 0, pos
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise _malformed(f"a field of {length} bytes where {end - pos} remain")
            yield number, wire, pos, pos + length
            pos += length
        else:
            raise _malformed(f"wire type {wire} (groups are not used by ONNX)")


def _messages(data: bytes, start: int, end: int, numbers: tuple[int, ...]) -> Iterator[tuple[int, int, int]]:
    for number, wire, first, last in _fields(data, start, end):
        if number in numbers and wire == 2:
            yield number, first, last


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")


def _tensor(data: bytes, start: int, end: int, refs: list[ExternalRef]) -> None:
    name = ""
    external = False
    locations: list[str] = []
    for number, wire, first, last in _fields(data, start, end):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(data, first, last)
        elif number == _TENSOR_LOCATION and wire == 0:
            external = first == _EXTERNAL
        elif number == _TENSOR_EXTERNAL and wire == 2:
            key = value = ""
            for entry, entry_wire, a, b in _fields(data, first, last):
                if entry_wire == 2 and entry == 1:
                    key = _text(data, a, b)
                elif entry_wire == 2 and entry == 2:
                    value = _text(data, a, b)
            if key == "location":
                locations.append(value)
    if external or locations:  # ONNX Runtime reads the location only when EXTERNAL; either is suspect
        refs.extend(ExternalRef(name, location) for location in (locations or [""]))


def _sparse(data: bytes, start: int, end: int, refs: list[ExternalRef]) -> None:
    for _, first, last in _messages(data, start, end, _SPARSE_TENSORS):
        _tensor(data, first, last, refs)


def _nodes(data: bytes, start: int, end: int, field: int, refs: list[ExternalRef], depth: int) -> None:
    for _, node_start, node_end in _messages(data, start, end, (field,)):
        for _, a, b in _messages(data, node_start, node_end, (_NODE_ATTRIBUTE,)):
            for number, first, last in _messages(data, a, b, _ATTR_TENSORS + _ATTR_GRAPHS + _ATTR_SPARSE):
                if number in _ATTR_TENSORS:
                    _tensor(data, first, last, refs)
                elif number in _ATTR_SPARSE:
                    _sparse(data, first, last, refs)
                else:
                    _graph(data, first, last, refs, depth + 1)


def _graph(data: bytes, start: int, end: int, refs: list[ExternalRef], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _malformed(f"graphs nested deeper than {MAX_DEPTH}")
    for number, first, last in _messages(data, start, end, (_GRAPH_INITIALIZER, _GRAPH_SPARSE)):
        (_tensor if number == _GRAPH_INITIALIZER else _sparse)(data, first, last, refs)
    _nodes(data, start, end, _GRAPH_NODE, refs, depth)


def external_refs(data: bytes) -> list[ExternalRef]:
    """Every tensor of an ONNX model that keeps its values in another file.

    Raises:
        InputError: bytes that are not a well-formed protobuf message.
    """
    data = bytes(data)
    refs: list[ExternalRef] = []
    for number, first, last in _messages(data, 0, len(data), (_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS)):
        if number == _MODEL_GRAPH:
            _graph(data, first, last, refs, 1)
        elif number == _MODEL_TRAINING:
            for _, a, b in _messages(data, first, last, _TRAINING_GRAPHS):
                _graph(data, a, b, refs, 2)
        else:
            _nodes(data, first, last, _FUNCTION_NODE, refs, 1)
    return refs


def _listed(refs: list[ExternalRef]) -> str:
    names = sorted({repr(ref.location) for ref in refs})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _leaves(location: str, folder: Path) -> str | None:
    """Why `location` leaves `folder` (None: it stays inside and names a regular file)."""
    if not location:
        return "no location"
    if "\x00" in location:
        return "a NUL byte in the location"
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        return "an absolute path"
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        return "a path with '..'"
    root = folder.resolve()
    target = (folder / location).resolve()
    if target != root and root not in target.parents:
        return f"a symbolic link out of the model's folder (to {target})"
    if not target.is_file():
        return "no such file next to the model" if not target.exists() else "not a regular file"
    return None


def external_files(data: bytes, folder: Path | None, what: str) -> dict[str, bytes]:
    """The external data files of an ONNX model, read by edgekit, by location.

    Args:
        folder: the folder of a bare ``.onnx`` file; None for bytes from a bundle, which
            must be self-contained.

    Raises:
        UnsafeModelError: a reference in a bundle, or one that leaves `folder` (exit 3).
        InputError: malformed bytes, or an external file that cannot be read.
    """
    refs = external_refs(data)
    if not refs:
        return {}
    if folder is None:
        raise UnsafeModelError(what, expected="an ONNX variant that carries its weights (a bundle is self-contained)",
                               found=f"{len(refs)} tensor(s) with external data ({_listed(refs)}), which would be "
                               "read from outside the bundle",
                               hint="re-export the model with its weights inside (onnx.save(model, path, "
                               "save_as_external_data=False)) and rebuild the bundle")
    files: dict[str, bytes] = {}
    for ref in refs:
        if ref.location in files:
            continue
        problem = _leaves(ref.location, folder)
        if problem is not None:
            raise UnsafeModelError(what, expected="external data in files next to the model (relative paths "
                                   "inside its folder)", found=f"tensor {ref.tensor!r} reads {ref.location!r}: {problem}",
                                   hint="only load models from people you trust; keep external data files in "
                                   "the model's folder")
        try:
            files[ref.location] = (folder / ref.location).read_bytes()
        except OSError as exc:
            raise InputError(what, expected=f"a readable external data file {ref.location!r}",
                             found=exc.strerror or str(exc)) from exc
    return files
