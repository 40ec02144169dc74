"""``python -m benchmark speed``: how close the harness runs to this machine's own limit, measured in one process.

One module per concern: `throughput` (the matmul peak, and the shared training loop and inference against it in
useful FLOP/s), `steps` (every registered method's own steps, through the registry), `plain_recipe` (the plain
Transformers recipe against the harness's fine-tuning on identical cells), `floor` (the useful work a finished
grid did and the floor it needs at a peak), `command` (the flags, and what the command prints and writes).

What it may import: the layers below it (`benchmark.modeling`, `benchmark.data.sampling`, `benchmark.data.tasks`,
`benchmark.context`, `benchmark.flops`, `benchmark.grid.cache`, `benchmark.grid.execute`'s meter,
`benchmark.registry`, `benchmark.grid.store`, `benchmark.grid.runtime`, `benchmark.console`); never the command line,
which calls `add_arguments`. It builds no method itself: the loop it times is the one every gradient method shares,
the methods whose steps it measures come from the registry, and the plain recipe's counterpart is looked up
there by name (`plain_recipe.COUNTERPART`). torch is imported only inside what measures.
"""

from benchmark.speed.command import add_arguments, main, print_floor
from benchmark.speed.floor import Floor, Part, floor_of
from benchmark.speed.plain_recipe import compare_with_plain_recipe
from benchmark.speed.steps import measure_method
from benchmark.speed.throughput import (
    Throughput,
    matmul_params,
    matmul_peak,
    measure_inference,
    measure_parallel_training,
    measure_training,
)

__all__ = [
    "Floor",
    "Part",
    "Throughput",
    "add_arguments",
    "compare_with_plain_recipe",
    "floor_of",
    "main",
    "matmul_params",
    "matmul_peak",
    "measure_inference",
    "measure_method",
    "measure_parallel_training",
    "measure_training",
    "print_floor",
]
