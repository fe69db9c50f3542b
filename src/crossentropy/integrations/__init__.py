"""Integrations with training libraries: :mod:`crossentropy.integrations.transformers` (Hugging
Face causal language models; importing it imports ``transformers``) and
:class:`OutputProjectionLoss` (trainer-style loss modules that receive the output projection).
Importing this package imports torch."""

from crossentropy._lib.extras import reraise_missing

try:
    import torch  # noqa: F401  (the integrations' library)
except ModuleNotFoundError as exc:
    reraise_missing("crossentropy.integrations", exc)

from crossentropy.integrations._loss import OutputProjectionLoss

__all__ = ["OutputProjectionLoss"]
