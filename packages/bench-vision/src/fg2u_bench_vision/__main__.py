"""``python -m fg2u_bench_vision`` — the condensation benchmark on the core's runner (see
:mod:`fg2u_bench_vision.experiment`)."""

from fg2u.experiment import main
from fg2u_bench_vision.experiment import EXPERIMENT

raise SystemExit(main(EXPERIMENT))
