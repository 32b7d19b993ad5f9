"""``python -m fg2u_bench_lm`` — the CaMeLS benchmark on the core's runner (see :mod:`fg2u_bench_lm.experiment`)."""

from fg2u.experiment import main
from fg2u_bench_lm.experiment import EXPERIMENT

raise SystemExit(main(EXPERIMENT))
