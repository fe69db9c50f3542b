r"""DTensor arguments of the fused op: FSDP2's sharded weights, and tensor-parallel shards.

Without a process group, a DTensor ``linear_weight`` (or ``linear_bias``, class ``weight``) is a
data-parallel shard, as ``fully_shard`` leaves a parameter outside its module's forward: it is
all-gathered for the call, and its gradient is reduce-scattered back onto the shards as the
mean over the mesh's ranks, as FSDP2 reduces the gradients of the parameters it gathers
itself. With a process group, a DTensor weight is the tensor-parallel vocabulary shard (sharded
on its first axis over the group's ranks) and is used where it lies. And the check of a
process group argument.
"""

from __future__ import annotations

import sys
from typing import Any, cast, overload

import torch.distributed as dist
from torch import Tensor

__all__ = ["check_group", "holds_dtensor", "tensor_parallel_shard", "whole"]


def check_group(group: object, name: str) -> None:
    """``group`` is a torch.distributed ``ProcessGroup``, or ``None`` (a ``TypeError`` naming
    ``name`` otherwise)."""
    kind = getattr(dist, "ProcessGroup", None)  # absent where torch.distributed is
    if group is not None and kind is not None and not isinstance(group, kind):
        # (looked up here only: torch.compile cannot trace GroupMember's attributes)
        outside = getattr(getattr(dist, "GroupMember", None), "NON_GROUP_MEMBER", None)
        if outside is not None and group is outside:
            raise ValueError(
                f"{name}: this rank is not a member of the group (dist.new_group gives the "
                "ranks outside it a placeholder); call the loss on the group's ranks only"
            )
        raise TypeError(
            f"{name} must be a torch.distributed ProcessGroup (e.g. dist.group.WORLD or one "
            f"from dist.new_group); got {type(group).__name__}"
        )


def holds_dtensor(*tensors: object) -> bool:
    """Whether any of ``tensors`` is a DTensor (free when DTensor was never imported)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and any(isinstance(t, module.DTensor) for t in tensors)


@overload
def whole(t: Tensor) -> Tensor: ...
@overload
def whole(t: Tensor | None) -> Tensor | None: ...
def whole(t: Tensor | None) -> Tensor | None:
    """A data-parallel DTensor made whole on every rank: all-gathered forward; its gradient
    summed over the mesh's ranks and divided by their number on the way back (reduce-scatter
    onto ``Shard`` placements, all-reduce onto ``Replicate``). Any other tensor as it is."""
    if t is None or not holds_dtensor(t):
        return t
    from torch.distributed.tensor import Partial, Replicate

    d: Any = t  # a DTensor
    gathered = d.redistribute(d.device_mesh, [Replicate()] * d.device_mesh.ndim)
    return cast(Tensor, gathered.to_local(grad_placements=[Partial("avg")] * d.device_mesh.ndim))


@overload
def tensor_parallel_shard(t: Tensor, name: str, group: Any) -> Tensor: ...
@overload
def tensor_parallel_shard(t: Tensor | None, name: str, group: Any) -> Tensor | None: ...
def tensor_parallel_shard(t: Tensor | None, name: str, group: Any) -> Tensor | None:
    """This rank's rows of a DTensor sharded on its first axis over the ranks of ``group`` (a
    1-D mesh): its local tensor, whose gradient is this rank's shard of the whole one. Any
    other tensor as it is."""
    if t is None or not holds_dtensor(t):
        return t
    d: Any = t  # a DTensor
    mesh, placements = d.device_mesh, d.placements
    same_ranks = mesh.ndim == 1 and dist.get_process_group_ranks(
        mesh.get_group()
    ) == dist.get_process_group_ranks(group)
    if not same_ranks or not placements[0].is_shard(0):
        raise ValueError(
            f"{name}: with a process_group, a DTensor must be sharded on its first (vocabulary) "
            f"axis over a 1-D mesh of the group's ranks; got placements {tuple(placements)} "
            f"over a mesh of shape {tuple(mesh.shape)}"
        )
    return cast(Tensor, d.to_local())
