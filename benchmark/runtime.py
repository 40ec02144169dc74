"""Runtime policy: which device and precision a run uses, how many jobs run at once and with how many threads.
One place, so that the CLI, the speed report and the executors agree."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError

GIB_PER_JOB = 4  # memory per worker: model, optimizer state, cached features; setfit at `all` peaks near 3 GB


@dataclass(frozen=True)
class Resources:
    device: str
    precision: str
    jobs: int  # jobs at once
    threads: int  # torch threads per job


def resolve(device: str, precision: str, threads: int | None, jobs: int | None) -> Resources:
    """The run's device, precision, jobs and threads per job, from the user's requests and this machine."""
    device = resolve_device(device)
    cores = os.cpu_count() or 1
    for flag, value in (("--threads", threads), ("--jobs", jobs)):
        if value is not None and value > cores:
            raise UsageError(f"{flag} {value}: this machine has {cores} cores; use at most {cores}")
    total = threads or cores
    if jobs is not None and jobs > total:
        raise UsageError(f"--jobs {jobs} needs at least {jobs} threads, one per job (--threads {total})")
    jobs = default_jobs(jobs, device, total, available_gib())
    return Resources(device, resolve_precision(precision, device), jobs, max(1, total // jobs))


def default_jobs(requested: int | None, device: str, cores: int, available_gib: float) -> int:
    """Jobs at once: what the user asked; else, on CPU, one 1-thread worker per core as memory allows, and one
    on an accelerator (cells would queue on it). A few-shot batch's matmuls are small: two 1-thread processes
    train ~1.3x faster together than one 2-thread process (docs/speed.md)."""
    if requested:
        return requested
    if not device.startswith("cpu"):
        return 1
    return max(1, min(cores, int(available_gib // GIB_PER_JOB)))


def available_gib() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    kind = requested.split(":")[0]
    if kind == "cpu" and requested == "cpu":
        return "cpu"
    if kind == "cuda" and torch.cuda.is_available():
        index = requested.partition(":")[2]
        if index and not (index.isascii() and index.isdigit() and int(index) < torch.cuda.device_count()):
            raise UsageError(f"--device {requested}: this machine has CUDA devices 0..{torch.cuda.device_count() - 1}")
        return requested
    if kind == "mps" and torch.backends.mps.is_available():
        return "mps"
    if kind in ("cuda", "mps"):
        raise UsageError(f"--device {requested}: no {kind.upper()} device is available on this machine")
    raise UsageError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps")


def resolve_precision(requested: str, device: str) -> str:
    """bf16 autocast by default only where it is known to be fast (CUDA with bf16); fp32 elsewhere."""
    if requested != "auto":
        return requested
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
