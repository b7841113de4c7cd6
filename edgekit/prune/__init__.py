"""`edgekit prune`: magnitude (unstructured) and structured pruning for Keras 3 models.

`magnitude` zeroes the smallest weights during fine-tuning on a polynomial-decay
schedule; `structured` removes whole filters and units and rebuilds a thinner model;
`run` ties them to data, fine-tuning and the report.
"""
