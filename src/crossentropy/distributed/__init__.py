r"""Cross-entropy across devices: the vocabulary split over the ranks of a process group.

:func:`vocab_parallel_cross_entropy` takes logits sharded on the class axis (each rank holds
:math:`V_r` of the :math:`V` classes, as tensor-parallel output layers produce them, or a
DTensor sharded on that axis) and gives the cross-entropy of the whole rows, communicating a
few numbers per token and never logits. The fused op's distributed forms are keywords of
:func:`crossentropy.fused.linear_cross_entropy` (``process_group=``, ``sequence_parallel=``, and
FSDP2's DTensor weights). Importing this package imports torch when the function is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crossentropy._lib.extras import reraise_missing

if TYPE_CHECKING:
    from crossentropy.distributed._vocab import vocab_parallel_cross_entropy

__all__ = ["vocab_parallel_cross_entropy"]


if not TYPE_CHECKING:  # a type checker sees the imports above: a misspelt name is an error

    def __getattr__(name: str) -> Any:
        if name == "vocab_parallel_cross_entropy":
            try:
                module = importlib.import_module("crossentropy.distributed._vocab")
            except ModuleNotFoundError as exc:
                reraise_missing(f"crossentropy.distributed.{name}", exc)
            return module.__dict__[name]
        raise AttributeError(f"module 'crossentropy.distributed' has no attribute {name!r}")
