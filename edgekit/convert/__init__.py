"""`edgekit convert`: a trained model (or one exported elsewhere) to a verified bundle.

`run` is the entry point (`ConvertConfig`, `convert`); `source` loads the model a user
brings (code refused unless trusted); `variants` builds each bundle variant; `outputs`
keeps every variant's outputs in the source's order; `fidelity` measures each variant
against the float model on real data. Import submodules explicitly: this ``__init__``
imports nothing heavy.
"""
