"""Yardsticks: code kept only to measure today's code against, never shipped or run by a sweep.

``fast_v1``: the compiled L=1 engine before the batched kernels (c48fafc), timed and compared
by ``bench.speed`` and ``bench.ulp_sensitivity``. ``stall_rule``: the parametric stall-rule
family the thresholds of ``sweep.rules.stall.check_stalled`` were searched in, superseded by
it.
"""
