"""``--backend onnxruntime``: ONNX Runtime on the CPU execution provider, for .onnx models.

External data (see `edgekit.runtime.onnxdata`): refused in bytes from a bundle; for a
bare file, read by edgekit from inside its folder and given to ONNX Runtime in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._native import onnxruntime_log_level
from edgekit._optional import require
from edgekit.errors import InputError
from edgekit.runtime.backends import probe as probes
from edgekit.runtime.backends.base import Backend, BackendPlugin, first_line, output_order

# what the probe feeds zeros of, by ONNX Runtime's input type names
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
               "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU execution provider.

    External data (see `onnxdata`): refused in bytes from a bundle (`folder` None); for a
    bare file, read by edgekit from inside `folder` and given to ONNX Runtime in memory.
    """

    def __init__(self, data: bytes, threads: int | None = None, outputs: Sequence[str] | None = None,
                 folder: Path | None = None, probe: bool = True) -> None:
        super().__init__()
        from edgekit.runtime.onnxdata import external_files

        external = external_files(data, folder, "ONNX model")  # before any native parser sees the bytes
        ort = require("onnxruntime", "running .onnx models")
        self.package = "onnxruntime"
        if probe:
            probes.probe_model("onnx", data, self.package, folder)  # through the module: a test harness may replace it
        options = ort.SessionOptions()
        options.log_severity_level = onnxruntime_log_level()  # its warnings only with -v
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if external:
            if not hasattr(options, "add_external_initializers_from_files_in_memory"):
                raise InputError("ONNX model with external data", expected="onnxruntime 1.18 or newer",
                                 found=f"onnxruntime {ort.__version__}", hint='pip install -U "onnxruntime>=1.18"')
            options.add_external_initializers_from_files_in_memory(
                list(external), list(external.values()), [len(b) for b in external.values()])
        try:
            self.session = ort.InferenceSession(bytes(data), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputError("ONNX model", expected="a model ONNX Runtime accepts", found=first_line(exc)) from exc
        self.name = f"onnxruntime {ort.__version__}"
        try:  # names come from the file: one that is not UTF-8 fails here
            self.input_names = [i.name for i in self.session.get_inputs()]
            names = [o.name for o in self.session.get_outputs()]
        except UnicodeDecodeError as exc:
            raise InputError("ONNX model", expected="UTF-8 tensor names", found=first_line(exc),
                             hint="the file is corrupt; re-export it") from exc
        self.input_count = len(self.input_names)
        order = output_order("ONNX model", names, outputs)
        self.output_names = [names[k] for k in order]
        self._fetch = None if order == list(range(len(names))) else self.output_names  # None: all, file order
        self._run_failures = (Exception,)  # onnxruntime raises its own types (InvalidArgument, Fail, ...)

    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(self._fetch, dict(zip(self.input_names, inputs, strict=True))))

    def input_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return [(tuple(d if isinstance(d, int) else 1 for d in i.shape), np.dtype(_ORT_DTYPES.get(i.type, np.float32)))
                for i in self.session.get_inputs()]


def _onnxruntime() -> Any:
    import onnxruntime

    return onnxruntime


PLUGIN = BackendPlugin(format="onnx", package="onnxruntime", module="onnxruntime", load=_onnxruntime,
                       open=OnnxBackend, help="ONNX Runtime (pip onnxruntime) on the CPU")
