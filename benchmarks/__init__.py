"""The benchmark suite (issue #7): the whole path on the services stack, each figure beside the raw limit.

``./dev.sh bench [--quick]`` runs it; ``python -m benchmarks --help`` lists the options. Timings
never decide a test: ``tests/benchmarks`` only checks that a tiny run produces every figure.
"""
