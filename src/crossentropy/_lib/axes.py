"""Axes: one home for normalising an ``axis`` argument and for treating several axes as one.

A tuple of axes is handled by moving those axes to the end and flattening them into one, so
every formula sees a single last axis; :class:`Axes` undoes it on the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossentropy._lib.checks import check_int
from crossentropy._lib.namespace import Array, Namespace, move_axis

__all__ = ["Axes", "normalize_axis"]


def normalize_axis(axis: object, ndim: int, name: str = "axis") -> int:
    """``axis`` as a non-negative int (negative counts from the end); ``ValueError`` when out
    of range, ``TypeError`` when not an integer."""
    a = check_int(axis, name)
    n = max(ndim, 1)
    if not -n <= a < n:
        raise ValueError(f"{name} {a} is out of range for an array of {ndim} dimensions")
    return a % n


@dataclass(frozen=True, slots=True)
class Axes:
    """Axes of an array of ``ndim`` dimensions to be treated as one trailing axis."""

    axes: tuple[int, ...]
    shape: tuple[int, ...]  # of the original array

    @staticmethod
    def of(axis: object, shape: tuple[int, ...], name: str = "axis") -> Axes:
        """Normalise an int or a tuple of ints (distinct) for an array of ``shape``."""
        ndim = len(shape)
        if isinstance(axis, (tuple, list)):
            if not axis:
                raise ValueError(f"{name} must name at least one axis; got ()")
            axes = tuple(normalize_axis(a, ndim, name) for a in axis)
            if len(set(axes)) != len(axes):
                raise ValueError(f"{name} must not repeat an axis; got {tuple(axis)}")
        else:
            axes = (normalize_axis(axis, ndim, name),)
        return Axes(axes, tuple(shape))

    @property
    def single(self) -> bool:
        return len(self.axes) == 1

    @property
    def rest(self) -> tuple[int, ...]:
        """The axes that are not reduced, in order."""
        return tuple(i for i in range(len(self.shape)) if i not in self.axes)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The shape without the axes (of a reduction over them)."""
        if self.single:
            a = self.axes[0]
            return self.shape[:a] + self.shape[a + 1 :]
        return tuple(self.shape[i] for i in self.rest)

    @property
    def size(self) -> int:
        size = 1
        for a in self.axes:
            size *= int(self.shape[a])
        return size

    def to_last(self, xp: Namespace, x: Array) -> Array:
        """``x`` (of the original shape) with the axes moved to the end and flattened."""
        if self.single:
            return move_axis(xp, x, self.axes[0], -1) if self.axes[0] != x.ndim - 1 else x
        moved = xp.permute_dims(x, (*self.rest, *self.axes))
        batch = tuple(self.shape[i] for i in self.rest)
        return xp.reshape(moved, (*batch, self.size))

    def from_last(self, xp: Namespace, y: Array) -> Array:
        """Undo :meth:`to_last` on an array of the same layout."""
        if self.single:
            return move_axis(xp, y, -1, self.axes[0]) if self.axes[0] != y.ndim - 1 else y
        batch = tuple(self.shape[i] for i in self.rest)
        moved = xp.reshape(y, (*batch, *(self.shape[a] for a in self.axes)))
        order = (*self.rest, *self.axes)
        inverse = tuple(order.index(i) for i in range(len(self.shape)))
        return xp.permute_dims(moved, inverse)

    def keepdims_shape(self) -> tuple[int, ...]:
        """The shape of a reduction over the axes with ``keepdims``."""
        return tuple(1 if i in self.axes else s for i, s in enumerate(self.shape))
