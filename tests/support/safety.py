"""A tiny image safety classifier for tests: a random-weight ViT saved with ``save_pretrained``, loaded by the
worker through the real ``from_pretrained``. Its head is set so that it flags every image, or none."""

from __future__ import annotations

from pathlib import Path

UNSAFE, SAFE = "nsfw", "normal"


def write_safety_model(folder: Path, *, flags: bool, seed: int = 0) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32,
                       id2label={0: SAFE, 1: UNSAFE}, label2id={SAFE: 0, UNSAFE: 1})
    torch.manual_seed(seed)
    model = ViTForImageClassification(config)
    head = model.classifier
    assert isinstance(head, torch.nn.Linear) and head.out_features == 2  # two labels, from id2label
    with torch.no_grad():  # whatever the random body sees, the head decides
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 6.0] if flags else [6.0, 0.0]))
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
