"""Everything that needs TensorFlow/Keras: training, export, conversion, validation.

Import submodules explicitly; this package's __init__ imports nothing heavy.
"""
