"""Make `import _workloads` work whether asv imports us as `benchmarks.bench_x` or a reader
runs `python -c "import bench_x"` with bench/benchmarks on sys.path."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
