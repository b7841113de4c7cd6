"""The fixed choices of `edgekit prune` (and of a recipe's ``prune`` section), with their help.

Light on purpose: the command line reads them to build its options."""

from __future__ import annotations

from edgekit.choices import Choice


class Scope(Choice):
    """``--scope``: where magnitude pruning's target sparsity applies."""

    LAYER = "layer", "every layer at the target sparsity"
    GLOBAL = "global", "one magnitude threshold over all pruned layers"


class Importance(Choice):
    """``--importance``: how channel pruning ranks the channels it removes."""

    L1 = "l1", "L1 norm of each filter"
    L2 = "l2", "L2 norm of each filter"
    BN = "bn", "the following BatchNorm's |gamma| (L1 where there is none)"


SCOPES = tuple(scope.value for scope in Scope)
IMPORTANCE = tuple(importance.value for importance in Importance)
