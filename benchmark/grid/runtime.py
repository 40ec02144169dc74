"""Runtime policy: which device and precision a run uses, how many jobs run at once and with how many threads.
One place, so that the CLI, the speed report and the executors agree."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError

GIB_PER_JOB = 4  # memory per worker: model, optimizer state, cached features; setfit at `all` peaks near 3 GB
GPU_GIB_PER_JOB = 3  # device memory per cell of a small encoder (MiniLM: well under 1 GB; headroom for larger)
NATIVE_BF16 = ("amx_bf16", "avx512_bf16", "bf16", "sve_bf16")  # torch.cpu.get_capabilities() keys


@dataclass(frozen=True)
class Resources:
    device: str
    precision: str
    jobs: int  # jobs at once
    threads: int  # torch threads per job


def resolve(
    device: str, precision: str, threads: int | None, jobs: int | None, cache_dir: Path | None = None
) -> Resources:
    """The run's device, precision, jobs and threads per job, from the user's requests and this machine."""
    device = resolve_device(device)
    cores = os.cpu_count() or 1
    for flag, value in (("--threads", threads), ("--jobs", jobs)):
        if value is not None and value > cores:
            raise UsageError(f"{flag} {value}: this machine has {cores} cores; use at most {cores}")
    total = threads or cores
    if jobs is not None and jobs > total:
        raise UsageError(f"--jobs {jobs} needs at least {jobs} threads, one per job (--threads {total})")
    jobs = default_jobs(jobs, device, total, available_gib(), cache_dir)
    return Resources(device, resolve_precision(precision, device), jobs, max(1, total // jobs))


def default_jobs(
    requested: int | None, device: str, cores: int, available_gib: float, cache_dir: Path | None = None
) -> int:
    """Jobs at once: what the user asked; else, on CPU, one 1-thread worker per core as memory allows (a few-shot
    batch's matmuls are small: side by side, 1-thread workers train faster than one process with every
    thread on many CPUs; `split_choice` checks this machine); on a GPU, as many cells as its free memory holds
    (a 22M-parameter cell uses a few percent of a modern GPU), at most one per core."""
    if requested:
        return requested
    if device.startswith("cuda"):
        return max(1, min(cores, int(free_gpu_gib(device) // GPU_GIB_PER_JOB)))
    if not device.startswith("cpu"):
        return 1
    return max(1, min(split_choice(cores, cache_dir), int(available_gib // GIB_PER_JOB)))


def free_gpu_gib(device: str) -> float:
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return free / 2**30


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
    """The run's precision: bf16 autocast by default on CUDA with bf16, fp32 elsewhere. On a CPU `auto` then
    picks per method (`cpu_auto_precisions`)."""
    if requested != "auto":
        return requested
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def cpu_auto_precisions(specs, params: dict[str, dict]) -> dict[str, str]:
    """`--precision auto` on a CPU, per method: bf16 where the CPU does bf16 natively and measurably faster and
    the method declares committed evidence that its bf16 cells are equivalent to fp32 for its current revision
    (`register(..., bf16_evidence=REVISION)`, docs/speed.md) at the hyperparameters the evidence ran (its
    defaults); fp32 for every other method. Empty (the run's fp32 for all) where the CPU gains nothing."""
    if not any(spec.bf16_shown_equivalent for spec in specs) or not (cpu_has_native_bf16() and bf16_is_faster()):
        return {}
    return {
        spec.name: "bf16" if spec.bf16_shown_equivalent and params[spec.name] == spec.defaults() else "fp32"
        for spec in specs
    }


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16 (x86), BF16 or SVE-BF16 (Arm), as torch reports the CPU's capabilities."""
    import torch

    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(name) for name in NATIVE_BF16)


def bf16_is_faster(size: int = 1024, seconds: float = 0.3, margin: float = 1.2) -> bool:
    """A short check in this process: does a bf16 matmul run at least `margin` x the fp32 rate?"""
    import time

    import torch

    rates = {}
    generator = torch.Generator().manual_seed(0)  # the global generators stay as they are
    for dtype in (torch.float32, torch.bfloat16):
        a, b = (torch.randn(size, size, generator=generator).to(dtype) for _ in range(2))
        a @ b  # warm-up: kernel selection
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            a @ b
            count += 1
        rates[dtype] = count / (time.perf_counter() - started)
    return rates[torch.bfloat16] >= margin * rates[torch.float32]


def cpu_name() -> str:
    """The CPU's model as the OS spells it ('Intel(R) Xeon(R) ...', 'AMD EPYC ...'); on a CPU whose
    /proc/cpuinfo has no model name (Arm, most often) or on another OS, what `platform` knows; never empty."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    return cpu_name_from(cpuinfo, platform.processor(), platform.machine())


def cpu_name_from(cpuinfo: str, processor: str, machine: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return processor.strip() or machine.strip() or "unknown CPU"


# --- how to split a CPU's cores between jobs ------------------------------------------------------------------

SPLIT_MARGIN = 1.05  # side-by-side 1-thread workers must beat one process with every thread by this much


def split_choice(cores: int, cache_dir: Path | None) -> int:
    """Jobs for a CPU run: `cores` 1-thread workers if, on this machine, they train measurably faster side by
    side than one process with every thread, else 1. Measured once per machine (CPU model, cores, torch) and
    kept in the cache folder; without one, workers side by side (the faster on most CPUs measured)."""
    import json

    import torch

    if cores < 2 or cache_dir is None:
        return cores
    path = Path(cache_dir) / "machine" / f"{machine_slug(cpu_name())}-{cores}-torch{torch.__version__}.json"
    try:
        ratio = json.loads(path.read_text())["ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise ValueError(f"ratio {ratio!r}")
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or damaged: measure (again)
        from benchmark.grid.files import atomic_write_text

        facts = measure_split(cores)
        ratio = facts["ratio"]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(facts | {"cpu": cpu_name(), "cores": cores, "torch": torch.__version__}))
    return cores if ratio >= SPLIT_MARGIN else 1


def measure_split(cores: int, seconds: float = 1.5, rounds: int = 2) -> dict:
    """Steps/s of a MiniLM-shaped training step (6 blocks, width 384, 16 x 32 tokens) in one process with
    `cores` threads, against `cores` 1-thread processes started together; the best of `rounds` each,
    interleaved, as the machine's speed moves."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(cores)
    pool = context.Pool(cores, initializer=_keep, initargs=(barrier,))
    try:
        alone, side_by_side = 0.0, 0.0
        for _ in range(rounds):
            alone = max(alone, pool.apply(_steps_per_second, (cores, seconds, False)))
            side_by_side = max(side_by_side, sum(pool.starmap(_steps_per_second, [(1, seconds, True)] * cores)))
    finally:
        pool.terminate()
    return {"one_process": round(alone, 2), "side_by_side": round(side_by_side, 2), "ratio": side_by_side / alone}


_barrier = None


def _keep(barrier) -> None:
    global _barrier
    _barrier = barrier


def _steps_per_second(threads: int, seconds: float, together: bool) -> float:
    import time

    import torch

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(384, 12, 1536, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False)
    batch = torch.randn(16, 32, 384, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters())

    def step() -> None:
        model(batch).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    if together:
        _barrier.wait()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def machine_slug(text: str) -> str:
    """A file name for a CPU's name on every file system: ASCII letters and digits, runs of anything else
    ('(R)', '/', spaces, non-ASCII) one '-'."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "cpu"
