"""CaMeLS benchmark: meta-learned token weights for online adaptation of language models.

Modules: :mod:`~fg2u_bench_lm.data`, :mod:`~fg2u_bench_lm.tokenizer`, :mod:`~fg2u_bench_lm.models`,
:mod:`~fg2u_bench_lm.pretrain`, :mod:`~fg2u_bench_lm.camels` (the bi-level problem),
:mod:`~fg2u_bench_lm.evaluate`, :mod:`~fg2u_bench_lm.configs`, :mod:`~fg2u_bench_lm.experiment` (the
benchmark on :mod:`fg2u.experiment`'s runner; ``python -m fg2u_bench_lm``), :mod:`~fg2u_bench_lm.memory`
(the memory sweep's builder), :mod:`~fg2u_bench_lm.figures`.
"""

__version__ = "0.1.0"
