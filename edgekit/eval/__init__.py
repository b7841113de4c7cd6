"""``edgekit eval``: a bundle's variants measured on labelled data through the runtime.

    from edgekit.eval import EvalConfig, evaluate
    report = evaluate(EvalConfig(bundle=Path("kws.edgekit"), data=Path("clips/")))
    print(report.render())            # the table
    report.to_dict()                  # the JSON of docs/eval.md

Every sample goes through `edgekit.runtime.Model.predict` from raw data (image files,
WAV clips, rows of an ``.npz`` ``x``, windows of CSV recordings), so the figures include
the bundle's own front end, quantization and postprocessing, as on the device. Device
side: never imports TensorFlow nor the host-side packages.

Data layouts, the figures and their confidence intervals, the JSON (``--json`` and
``eval.json``, schema 1) and the exit codes are documented in ``docs/eval.md``.
"""

from edgekit.eval.report import EvalReport, VariantResult
from edgekit.eval.run import EvalConfig, evaluate

__all__ = ["EvalConfig", "EvalReport", "VariantResult", "evaluate"]
