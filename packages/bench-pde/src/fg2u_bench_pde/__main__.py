"""``python -m fg2u_bench_pde`` — PDE coefficient discovery on the core's runner (see
:mod:`fg2u_bench_pde.experiment`)."""

from fg2u.experiment import main
from fg2u_bench_pde.experiment import EXPERIMENT

raise SystemExit(main(EXPERIMENT))
