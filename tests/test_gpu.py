"""The GPU path: runs only where CUDA exists (this project's CI machine has none)."""

import json

import pytest
import torch

from benchmark.cli import main
from benchmark.grid.runtime import resolve_device, resolve_precision

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none on this machine")


def test_auto_device_picks_cpu_without_accelerators():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert resolve_device("auto") == "cpu" and resolve_precision("auto", "cpu") == "fp32"


@cuda
def test_grid_on_cuda_with_every_method(tiny_csv, tiny_model, tmp_path):
    from benchmark import registry

    methods = ",".join(sorted(registry.available()))
    short = ["--set", "full.max_epochs=2", "--set", "setfit.num_iterations=2", "--set", "mlm.mlm_epochs=1"]
    args = ["--dataset", str(tiny_csv), "--model", str(tiny_model), "--methods", methods, "--shots", "4",
            "--seeds", "1", "--device", "cuda", "--out", str(tmp_path / "run"), *short]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert {r["device"] for r in records} == {"cuda"}
    assert {r["precision"] for r in records} == {"bf16" if torch.cuda.is_bf16_supported() else "fp32"}
    assert all(r["status"] == "ok" for r in records)


@cuda
def test_several_cells_share_one_gpu(tiny_csv, tiny_model, tmp_path):
    """Worker processes share the device: by default as many as its free memory holds (3 GiB each), at most one
    per core."""
    import os

    from benchmark.grid import runtime

    expected = min(os.cpu_count() or 1, int(runtime.free_gpu_gib("cuda") // runtime.GPU_GIB_PER_JOB))
    if expected < 2:
        pytest.skip(f"room for {expected} job on this GPU and CPU: nothing to share")
    args = ["--dataset", str(tiny_csv), "--model", str(tiny_model), "--methods", "full,lora", "--shots", "4",
            "--seeds", "2", "--device", "cuda", "--set", "full.max_epochs=2",
            "--set", "lora.max_epochs=2", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["jobs"] >= 2
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert (
        len(records) == 4 and {r["device"] for r in records} == {"cuda"} and all(r["status"] == "ok" for r in records)
    )
