"""`edgekit train`: a recipe and data in; a Keras model, its contract and a report out.

`run` is the entry point (`TrainConfig`, `train`); `recipes` finds and parses the recipes
in ``models/``; `data` reads and splits the raw data; `pipeline` holds the TensorFlow front
ends and ``tf.data`` pipelines; `architectures` the edge-sized Keras models; `gan` the
adversarial loop; `fit` the compile/fit/evaluate steps prune shares; `report` the plots
and Markdown. Import submodules explicitly: this ``__init__`` imports nothing heavy.
"""
