"""The fixed choices of `edgekit prune` (and of a recipe's ``prune`` section), with their help.

Light on purpose: the command line reads them to build its options."""

from __future__ import annotations

import enum


class Scope(str, enum.Enum):
    """``--scope``: where magnitude pruning's target sparsity applies."""

    LAYER = "layer"
    GLOBAL = "global"

    @property
    def help(self) -> str:
        return _SCOPE_HELP[self]


class Importance(str, enum.Enum):
    """``--importance``: how channel pruning ranks the channels it removes."""

    L1 = "l1"
    L2 = "l2"
    BN = "bn"

    @property
    def help(self) -> str:
        return _IMPORTANCE_HELP[self]


_SCOPE_HELP = {
    Scope.LAYER: "every layer at the target sparsity",
    Scope.GLOBAL: "one magnitude threshold over all pruned layers",
}
_IMPORTANCE_HELP = {
    Importance.L1: "L1 norm of each filter",
    Importance.L2: "L2 norm of each filter",
    Importance.BN: "the following BatchNorm's |gamma| (L1 where there is none)",
}
SCOPES = tuple(scope.value for scope in Scope)
IMPORTANCE = tuple(importance.value for importance in Importance)
