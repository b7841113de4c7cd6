"""Output order: every variant lists its outputs in the source model's order.

Converters do not keep the order of a multi-output model. The TFLite converter names
the outputs ``StatefulPartitionedCall:0``, ``:1``... and lays them out in an order of
its own (a Keras model ``[boxes, scores]`` comes out as ``[scores, boxes]`` or the other
way round), and string-sorted signature keys put ``output_10`` before ``output_2``.
After a variant is built its outputs are matched to the source's by name (the TFLite
signature keys and the ONNX output names are the SavedModel signature keys), else by
shape and dtype, and the model file itself is rewritten so that its outputs come in the
source's order. The manifest, the interpreter and the runtime then agree on one order
without a lookup table, and a device that opens the file with its own interpreter sees
the same order as edgekit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from edgekit.convert.variants import ConversionError
from edgekit.spec import DType, TensorSpec

_NUMBERED = re.compile(r"output_(\d+)")


def signature_order(keys: Sequence[str]) -> list[str]:
    """The source-model order of SavedModel signature output keys.

    Keras exports a list of outputs as ``output_0``, ``output_1``... (list order) and a
    dict of outputs under its keys, which Keras itself orders by sorted key.
    """
    numbers = [_NUMBERED.fullmatch(k) for k in keys]
    if all(numbers) and sorted(int(m.group(1)) for m in numbers if m) == list(range(len(keys))):
        return sorted(keys, key=lambda k: int(k.removeprefix("output_")))
    return sorted(keys)


def _value_kind(spec: TensorSpec) -> str:
    """What a tensor holds once dequantized: quantized int8 outputs stand for floats."""
    if spec.quantization is not None or spec.dtype in (DType.FLOAT32, DType.FLOAT16):
        return "float"
    return spec.dtype.value


def _same_shape(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or x < 0 or y < 0 for x, y in zip(a, b, strict=True))


def _fits(reference: TensorSpec, candidate: TensorSpec) -> bool:
    return _same_shape(reference.shape, candidate.shape) and _value_kind(reference) == _value_kind(candidate)


def _describe(spec: TensorSpec) -> str:
    return f"{spec.name!r} {_shape(spec.shape)} {_value_kind(spec)}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in shape) + ")"


def match_outputs(reference: Sequence[TensorSpec], candidates: Sequence[TensorSpec],
                  keys: Sequence[str | None], what: str) -> list[int]:
    """Which candidate output is each reference output.

    Args:
        reference: the source model's outputs, in its order (names are signature keys).
        candidates: the variant's outputs, in the variant's order.
        keys: the name each candidate carries that can equal a reference name (TFLite
            signature key, ONNX output name), or None where there is none.
        what: the variant, for messages.

    Returns:
        ``order`` with ``candidates[order[i]]`` being ``reference[i]``.

    Raises:
        ConversionError: the counts differ, a name points at an output of another shape,
            or outputs without matching names share a shape and dtype (ambiguous).
    """
    if len(candidates) != len(reference):
        raise ConversionError(f"{what}: expected {len(reference)} outputs like the source model, "
                              f"found {len(candidates)}")
    order: list[int | None] = [None] * len(reference)
    named = [k for k in keys if k is not None]
    if len(set(named)) == len(named):  # duplicate names identify nothing
        index = {k: j for j, k in enumerate(keys) if k is not None}
        for i, ref in enumerate(reference):
            j = index.get(ref.name)
            if j is None:
                continue
            if not _fits(ref, candidates[j]):
                raise ConversionError(f"{what}: output {ref.name!r} is {_describe(candidates[j])} in the converted "
                                      f"model but {_shape(ref.shape)} {_value_kind(ref)} in the source model")
            order[i] = j
    # The rest by shape and dtype, where that is unique both ways.
    pending = [i for i, j in enumerate(order) if j is None]
    free = [j for j in range(len(candidates)) if j not in order]
    for i in pending:
        ref = reference[i]
        options = [j for j in free if _fits(ref, candidates[j])]
        rivals = [k for k in pending if k != i and order[k] is None and options
                  and _fits(reference[k], candidates[options[0]])]
        if len(options) != 1 or rivals:
            found = ", ".join(_describe(candidates[j]) for j in options) or "no output of that shape and dtype"
            raise ConversionError(
                f"{what}: cannot tell which output is the source's {_describe(ref)}: expected one output named "
                f"{ref.name!r} or exactly one of that shape and dtype, found {found}; give the model's outputs "
                "distinct shapes, or keep their SavedModel signature names")
        order[i] = options[0]
        free.remove(options[0])
    return [j for j in order if j is not None]


def output_keys(fmt: str, data: bytes) -> list[str | None]:
    """The names by which the variant's outputs can be matched to the source's.

    TFLite: the serving signature's output keys (the tensor names are the converter's);
    ONNX: the graph output names (tf2onnx keeps the signature keys).
    """
    if fmt == "onnx":
        import onnx

        return [o.name for o in onnx.load_model_from_string(data).graph.output]
    from edgekit.runtime.backends import tflite_interpreter_class

    interpreter_class, _package = tflite_interpreter_class()
    interpreter = interpreter_class(model_content=bytes(data))
    details = interpreter.get_output_details()
    signatures = interpreter.get_signature_list()
    key = "serving_default" if "serving_default" in signatures else (next(iter(signatures)) if len(signatures) == 1 else None)
    if key is None:
        return [None] * len(details)
    try:
        runner_outputs = interpreter.get_signature_runner(key).get_output_details()
    except (ValueError, RuntimeError, KeyError):  # an unusable signature names nothing; shapes decide
        return [None] * len(details)
    by_index = {int(d["index"]): name for name, d in runner_outputs.items()}
    return [by_index.get(int(d["index"])) for d in details]


def reorder_tflite_outputs(data: bytes, order: Sequence[int]) -> bytes:
    """Permute the main subgraph's output list in place (``new[i] = old[order[i]]``).

    Only the int32 tensor indices of ``Subgraph.outputs`` move: no offset, buffer or
    signature changes, so the flatbuffer stays valid byte for byte elsewhere.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    buffer = bytearray(data)
    subgraph = schema.Model.GetRootAs(buffer, 0).Subgraphs(0)
    count = subgraph.OutputsLength()
    if sorted(order) != list(range(count)):
        raise ValueError(f"order {list(order)} is not a permutation of {count} outputs")
    table = subgraph._tab  # noqa: SLF001 - the generated reader exposes no vector position
    start = table.Vector(table.Offset(8))  # vtable slot 8: Subgraph.outputs, as OutputsAsNumpy reads it
    outputs = np.frombuffer(buffer, "<i4", count, start)
    assert outputs.tolist() == [subgraph.Outputs(i) for i in range(count)]
    permuted = outputs[list(order)].copy()
    buffer[start : start + 4 * count] = permuted.tobytes()
    return bytes(buffer)


def reorder_onnx_outputs(data: bytes, order: Sequence[int]) -> bytes:
    """Permute the graph outputs (``new[i] = old[order[i]]``)."""
    import onnx

    model = onnx.load_model_from_string(data)
    outputs = list(model.graph.output)
    if sorted(order) != list(range(len(outputs))):
        raise ValueError(f"order {list(order)} is not a permutation of {len(outputs)} outputs")
    copies = [type(o)() for o in outputs]
    for copy, j in zip(copies, order, strict=True):
        copy.CopyFrom(outputs[j])
    del model.graph.output[:]
    model.graph.output.extend(copies)
    return model.SerializeToString()


def align_outputs(fmt: str, data: bytes, reference: Sequence[TensorSpec], what: str) -> bytes:
    """The variant's bytes with its outputs in the source model's order.

    Raises:
        ConversionError: the outputs cannot be matched unambiguously (see `match_outputs`).
    """
    from edgekit.inspection.isolate import describe_in_process

    if len(reference) == 1:  # nothing to order; a wrong count fails validation anyway
        return data
    info = describe_in_process(fmt, data=data)
    order = match_outputs(reference, info.outputs, output_keys(fmt, data), what)
    if order == list(range(len(order))):
        return data
    return reorder_onnx_outputs(data, order) if fmt == "onnx" else reorder_tflite_outputs(data, order)
