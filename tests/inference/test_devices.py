"""Which device each prefork worker process takes (`WORKER_DEVICES`); the real two-process run is in
test_scale_out.py. CUDA devices are claimed by narrowing CUDA_VISIBLE_DEVICES, which needs no GPU to check."""

from __future__ import annotations

import os

import pytest

from inference.devices import Device, claim_device, process_index


def test_no_devices_means_the_default_device() -> None:
    assert claim_device((), 3) is None


def test_process_i_takes_device_i(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert claim_device(("cpu:0", "cpu:1"), 1) == Device("cpu:1", "cpu:1")
    assert claim_device(("cuda:0", "cuda:1"), 1) == Device("cuda:1", "cuda:0")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"  # in this process, cuda:0 is GPU 1


def test_cuda_devices_count_within_the_inherited_visible_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert claim_device(("cuda:0", "cuda:1"), 1) == Device("cuda:1", "cuda:0")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(ValueError, match="shows only 1 GPUs"):
        claim_device(("cuda:0", "cuda:1"), 1)


def test_outside_a_pool_the_process_index_is_zero() -> None:
    assert process_index() == 0
