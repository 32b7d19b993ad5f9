"""``python -m fg2u_bench_vision`` — see :mod:`fg2u_bench_vision.run`."""

from fg2u_bench_vision.run import main

raise SystemExit(main())
