"""Integrations with training libraries: :mod:`crossentropy.integrations.transformers` (Hugging
Face causal language models; importing it imports ``transformers``) and
:class:`OutputProjectionLoss` (trainer-style loss modules that receive the output projection).
Importing this package imports torch."""

from crossentropy.integrations._loss import OutputProjectionLoss

__all__ = ["OutputProjectionLoss"]
