"""Integrations with training libraries: :mod:`crossentropy.integrations.transformers` (Hugging
Face causal language models) and :class:`crossentropy.integrations.OutputProjectionLoss`
(trainer-style loss modules that receive the output projection). Each imports its library only
when used."""

from __future__ import annotations

from typing import Any

__all__ = ["OutputProjectionLoss"]


def __getattr__(name: str) -> Any:
    if name == "OutputProjectionLoss":
        from crossentropy.integrations._loss import OutputProjectionLoss

        return OutputProjectionLoss
    raise AttributeError(f"module 'crossentropy.integrations' has no attribute {name!r}")
