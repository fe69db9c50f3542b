r"""Cross-entropy across devices: the vocabulary split over the ranks of a process group.

:func:`vocab_parallel_cross_entropy` takes logits sharded on the class axis (each rank holds
:math:`V_r` of the :math:`V` classes, as tensor-parallel output layers produce them, or a
DTensor sharded on that axis) and gives the cross-entropy of the whole rows, communicating a
few numbers per token and never logits. Importing this package imports torch.
"""

from crossentropy.distributed._vocab import vocab_parallel_cross_entropy

__all__ = ["vocab_parallel_cross_entropy"]
