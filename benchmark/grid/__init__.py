"""A grid run: from a configuration to a folder of records, on this machine's processes or a Ray cluster.

- `config`: `RunConfig`, what a run asks for (flags, a TOML file), validated by one schema.
- `plan`: `Settings`, `Cell` (self-contained and picklable, with its key), `Plan`, `build_plan` (every check,
  nothing written); `runtime`: device, precision (per method under `auto` on a CPU), jobs and threads.
- `scheduler` (pure: what runs next), `executors` (in process, worker processes), `ray_executor`, `execute` (one
  job end to end, in whichever process runs it), `runner` (the driver loop, Ctrl-C and SIGTERM), `sequential`
  (the looks of `--seeds auto`).
- `store` (the run folder: records, run.json, the lock), `cache` (one-off work on disk, checksummed), `files`
  (locks and atomic writes), `provenance` (run.json's stamp).

May import: `benchmark.data`, the method seam (`registry`, `context`, `record`, `modeling`, `flops`), the
foundations (`errors`, `budget`, `progress`, `schema`, `version`); never `report`, `stats`, the API, the console
or the command line, which call it.
"""
