import sys

from fg2u_bench_lm.run import main

sys.exit(main())
