"""CaMeLS benchmark: meta-learned token weights for online adaptation of language models.

Modules: :mod:`~fg2u_bench_lm.data`, :mod:`~fg2u_bench_lm.tokenizer`, :mod:`~fg2u_bench_lm.models`,
:mod:`~fg2u_bench_lm.pretrain`, :mod:`~fg2u_bench_lm.camels`, :mod:`~fg2u_bench_lm.evaluate`,
:mod:`~fg2u_bench_lm.memory`, :mod:`~fg2u_bench_lm.configs`, :mod:`~fg2u_bench_lm.run` (CLI).
"""

__version__ = "0.1.0"
