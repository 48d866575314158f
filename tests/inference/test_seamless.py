"""seamless(): circular padding inside the block, the previous padding after it, even on errors."""

from __future__ import annotations

import pytest
import torch

from inference.pipelines.seamless import seamless


def test_circular_inside_and_restored_after_an_error() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(RuntimeError), seamless(True, model, None):
        assert model[0].padding_mode == "circular"
        assert model[1].padding_mode == "zeros"  # unpadded layers are left alone
        raise RuntimeError("job failed")
    assert model[0].padding_mode == "zeros"


def test_output_wraps_around() -> None:
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    image = torch.randn(1, 1, 8, 8)
    with seamless(True, conv):
        shifted_then_conv = conv(torch.roll(image, 3, dims=-1))
        conv_then_shifted = torch.roll(conv(image), 3, dims=-1)
    torch.testing.assert_close(shifted_then_conv, conv_then_shifted)
    with seamless(False, conv):
        assert conv.padding_mode == "zeros"
