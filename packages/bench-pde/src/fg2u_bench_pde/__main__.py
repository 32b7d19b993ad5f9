import sys

from fg2u_bench_pde.cli import main

sys.exit(main())
