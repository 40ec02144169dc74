"""The floor under a finished grid: the useful work its records say each method did (train, predict, and one-off
work once per artifact), in TFLOP, and the machine-seconds it took (seconds × threads / cores), from which the
minutes that work needs at a given peak follow (`floor_of`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Part:
    """Useful TFLOP of one kind of work and the machine-seconds it took (seconds × threads / cores: a cell on
    one thread of two took half the machine)."""

    tflop: float = 0.0
    seconds: float = 0.0

    def add(self, flop: float, seconds: float) -> None:
        self.tflop += flop / 1e12
        self.seconds += seconds


@dataclass
class Floor:
    """The useful work a finished grid did, the time it took, and the time it needs at a given peak."""

    parts: dict[str, dict[str, Part]]  # method -> {"train", "predict", "one-off"}
    cells: int  # ok records with FLOPs counted
    uncounted: int  # ok records from before FLOPs were counted

    @property
    def tflop(self) -> float:
        return sum(part.tflop for parts in self.parts.values() for part in parts.values())

    @property
    def seconds(self) -> float:
        return sum(part.seconds for parts in self.parts.values() for part in parts.values())

    @property
    def cell_seconds(self) -> float:
        """The cells' machine-seconds: train and predict, without the one-off work."""
        return sum(part.seconds for parts in self.parts.values() for work, part in parts.items() if work != "one-off")

    def minutes(self, peak_gflops: float) -> float:
        return self.tflop * 1e3 / peak_gflops / 60


def floor_of(records, cores: int) -> Floor:
    """Train and predict work of every ok record, and one-off work once per artifact (a dataset's frozen
    features serve two methods: counted once, for the first). One-off work counts the time it took when it was
    built, with every core (the harness builds it before the cells start): in a run with cold caches, this run."""
    parts: dict[str, dict[str, Part]] = {}
    artifacts: set[tuple[str, float]] = set()
    counted = uncounted = 0
    for record in records:
        if not record.ok:
            continue
        if record.train_flops is None:
            uncounted += 1
            continue
        counted += 1
        share = min(record.threads, cores) / cores
        method = parts.setdefault(record.method, {"train": Part(), "predict": Part(), "one-off": Part()})
        method["train"].add(record.train_flops, record.train_seconds * share)
        method["predict"].add(record.predict_flops, record.predict_seconds * share)
        artifact = (record.dataset_fingerprint, record.one_off_flops or 0.0)
        if record.one_off_flops and artifact not in artifacts:
            artifacts.add(artifact)
            method["one-off"].add(record.one_off_flops, record.one_off_seconds or 0.0)
    return Floor(parts, counted, uncounted)
