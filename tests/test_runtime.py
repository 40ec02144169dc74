"""Runtime policy: how many jobs, how many threads, which precision, decided from the machine (mocked where this
machine lacks the hardware)."""

import dataclasses
import json

import pytest

from benchmark.grid import runtime

DEFAULT_JOBS = runtime.default_jobs  # conftest replaces it for other tests; the policy itself is tested here


@pytest.mark.parametrize(
    ("requested", "device", "cores", "gib", "gpu_gib", "expected"),
    [
        (None, "cpu", 2, 24.0, 0, 2),  # without a measurement: one 1-thread worker per core
        (None, "cpu", 16, 128.0, 0, 16),
        (None, "cpu", 16, 9.0, 0, 2),  # ... as memory allows
        (None, "cpu", 1, 0.5, 0, 1),  # never below one
        (None, "cuda", 32, 128.0, 10.0, 3),  # several cells share one GPU, as its free memory allows
        (None, "cuda", 2, 128.0, 70.0, 2),  # ... one per core at most
        (None, "cuda", 32, 128.0, 1.0, 1),
        (3, "cuda", 2, 1.0, 1.0, 3),  # what the user asked
    ],
)
def test_default_jobs_follow_cores_memory_and_device(monkeypatch, requested, device, cores, gib, gpu_gib, expected):
    monkeypatch.setattr(runtime, "free_gpu_gib", lambda device: gpu_gib)
    assert DEFAULT_JOBS(requested, device, cores, gib) == expected


CPUS = {  # how machines spell their CPU: the split is kept per CPU whatever the spelling
    "Intel(R) Xeon(R) Platinum 8480+": "intel-r-xeon-r-platinum-8480",
    "AMD EPYC 7R13 Processor": "amd-epyc-7r13-processor",
    "Neoverse-N1": "neoverse-n1",  # Arm: what platform gives where /proc/cpuinfo has no model name
    "": "cpu",
    "Vendor/Model ünïcode  CPU @ 2.0GHz": "vendor-model-n-code-cpu-2-0ghz",
}


@pytest.mark.parametrize(("ratio", "jobs"), [(1.3, 2), (1.0, 1), (0.8, 1)])
@pytest.mark.parametrize("cpu", list(CPUS))
def test_the_cpu_split_follows_a_measurement_kept_per_machine(tmp_path, monkeypatch, ratio, jobs, cpu):
    measured = []
    monkeypatch.setattr(runtime, "cpu_name", lambda: cpu)
    monkeypatch.setattr(runtime, "measure_split", lambda cores: measured.append(cores) or {"ratio": ratio})
    assert runtime.split_choice(2, tmp_path) == jobs
    assert runtime.split_choice(2, tmp_path) == jobs and measured == [2]  # measured once, then read back
    (kept,) = (tmp_path / "machine").iterdir()
    assert kept.name.startswith(f"{CPUS[cpu]}-2-torch") and kept.name.isascii()
    assert json.loads(kept.read_text())["ratio"] == ratio and json.loads(kept.read_text())["cpu"] == cpu


def test_another_cpu_is_measured_again_and_a_damaged_measurement_is_measured_again(tmp_path, monkeypatch):
    measured = []
    monkeypatch.setattr(runtime, "measure_split", lambda cores: measured.append(cores) or {"ratio": 1.3})
    for cpu in ("Intel(R) Xeon(R) Platinum 8480+", "AMD EPYC 9R14 Processor"):
        monkeypatch.setattr(runtime, "cpu_name", lambda cpu=cpu: cpu)
        assert runtime.split_choice(2, tmp_path) == 2
    assert len(measured) == 2 and len(list((tmp_path / "machine").iterdir())) == 2
    for damaged in ("{", '{"ratio": "fast"}', "[]"):
        for kept in (tmp_path / "machine").iterdir():
            kept.write_text(damaged)
        assert runtime.split_choice(2, tmp_path) == 2
    assert len(measured) == 5


@pytest.mark.parametrize(
    ("cpuinfo", "processor", "machine", "expected"),
    [
        ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n", "x86_64", "x86_64",
         "Intel(R) Xeon(R) Platinum 8480+"),
        ("model name\t: AMD EPYC 9R14 Processor\nflags\t: avx512_bf16\n", "", "x86_64", "AMD EPYC 9R14 Processor"),
        ("processor\t: 0\nBogoMIPS\t: 243.75\nCPU part\t: 0xd0c\n", "", "aarch64", "aarch64"),  # Arm
        ("model name\t:\n", "", "", "unknown CPU"),
        ("", "Apple M2", "arm64", "Apple M2"),  # macOS: no /proc/cpuinfo
    ],
)  # fmt: skip
def test_the_cpu_name_comes_from_cpuinfo_then_platform_and_is_never_empty(cpuinfo, processor, machine, expected):
    assert runtime.cpu_name_from(cpuinfo, processor, machine) == expected


def test_the_split_is_not_measured_without_a_cache_or_with_one_core(monkeypatch):
    monkeypatch.setattr(runtime, "measure_split", lambda cores: pytest.fail("measured"))
    assert runtime.split_choice(4, None) == 4 and runtime.split_choice(1, None) == 1


def capabilities(monkeypatch, **flags):
    import torch

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "x86_64", **flags})


@pytest.mark.parametrize(
    ("flags", "faster", "expected"),
    [
        ({"amx_bf16": True}, True, "bf16"),
        ({"avx512_bf16": True}, True, "bf16"),
        ({"avx512_bf16": True}, False, None),  # native, but not faster here
        ({"avx2": True}, True, None),  # no native bf16: emulated bf16 runs at a fraction of fp32
        ({"architecture": "aarch64", "bf16": True}, True, "bf16"),  # Arm with BF16
        ({"architecture": "aarch64", "sve_bf16": True}, False, None),
        ({"architecture": "aarch64"}, True, None),
        ({}, True, None),  # a torch that reports nothing
    ],
)
def test_auto_on_cpu_picks_bf16_per_method_only_where_native_faster_and_shown(monkeypatch, flags, faster, expected):
    from benchmark.registry import MethodSpec

    @dataclasses.dataclass
    class Hyper:
        lr: float = 1e-3
        revision = 2

    shown = MethodSpec("shown", Hyper, bf16_evidence=2)  # evidence for its current revision
    stale = MethodSpec("stale", Hyper, bf16_evidence=1)  # evidence for an older revision
    unshown = MethodSpec("unshown", Hyper)
    capabilities(monkeypatch, **flags)
    monkeypatch.setattr(runtime, "bf16_is_faster", lambda: faster)
    defaults = {spec.name: {"lr": 1e-3} for spec in (shown, stale, unshown)}
    picked = runtime.cpu_auto_precisions([shown, stale, unshown], defaults)
    if expected is None:
        assert picked == {}  # the run's precision (fp32) for every method
    else:
        assert picked == {"shown": "bf16", "stale": "fp32", "unshown": "fp32"}
        # hyperparameters the evidence did not run: fp32
        assert runtime.cpu_auto_precisions([shown], {"shown": {"lr": 1e-2}}) == {"shown": "fp32"}
    assert runtime.cpu_auto_precisions([unshown], defaults) == {}  # nothing to gain: not even the check runs
    assert runtime.resolve_precision("auto", "cpu") == "fp32"
    assert runtime.resolve_precision("fp32", "cpu") == "fp32" and runtime.resolve_precision("bf16", "cpu") == "bf16"


def test_the_bf16_check_runs_and_leaves_the_random_state_alone():
    import torch

    torch.manual_seed(3)
    before = torch.get_rng_state()
    assert isinstance(runtime.bf16_is_faster(size=64, seconds=0.01), bool)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_split_measurement_runs_and_reports_both_configurations():
    facts = runtime.measure_split(2, seconds=0.05, rounds=1)
    assert facts["one_process"] > 0 and facts["side_by_side"] > 0 and facts["ratio"] > 0
