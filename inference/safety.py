"""The optional image safety classifier: a transformers image-classification model, run by the worker on
each job's images after they are drawn and before they are stored.

``IMAGE_SAFETY_MODEL`` names the model (a folder saved with ``save_pretrained``, or a Hub id where the
worker may download); ``IMAGE_SAFETY_LABELS`` the labels that count as unsafe (``nsfw`` by default);
an image is flagged when the probabilities of those labels add up to ``IMAGE_SAFETY_THRESHOLD``. What
a flag does is the job's ``image_action`` (``domain.moderation``): block it (nothing stored or shown,
nothing charged), send it as a spoiler, or allow it (then the classifier does not run).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["SafetyClassifier", "SafetyConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """``IMAGE_SAFETY_MODEL``, ``IMAGE_SAFETY_LABELS`` and ``IMAGE_SAFETY_THRESHOLD``, as plain values."""

    model: str
    unsafe_labels: frozenset[str]
    threshold: float

    def load(self, device: str | None = None) -> SafetyClassifier:
        return SafetyClassifier(self.model, unsafe_labels=self.unsafe_labels, threshold=self.threshold,
                                device=device)


class SafetyClassifier:
    """Scores images with an image-classification model; :meth:`flagged` says whether any is unsafe."""

    def __init__(self, model: str, *, unsafe_labels: frozenset[str], threshold: float,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoImageProcessor.from_pretrained(model)
        self.model = AutoModelForImageClassification.from_pretrained(model).eval().to(self.device)
        labels = {int(index): str(name).lower() for index, name in self.model.config.id2label.items()}
        self.unsafe = sorted(index for index, name in labels.items() if name in unsafe_labels)
        if not self.unsafe:
            raise ValueError(f"IMAGE_SAFETY_LABELS {sorted(unsafe_labels)} name none of the labels of "
                             f"IMAGE_SAFETY_MODEL {model!r}: {sorted(labels.values())}")
        self.threshold = threshold
        log.info("image safety classifier %s on %s (unsafe: %s)", model, self.device,
                 [labels[i] for i in self.unsafe])

    def scores(self, images: Sequence[Image]) -> list[float]:
        """The probability that each image is unsafe (the sum over the unsafe labels)."""
        import torch

        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device, self.model.dtype)).logits
        return [float(p) for p in logits.float().softmax(-1)[:, self.unsafe].sum(-1).cpu()]

    def flagged(self, images: Sequence[Image]) -> bool:
        return any(score >= self.threshold for score in self.scores(images))
