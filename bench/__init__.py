"""Benchmarks, run from a source checkout; not part of the installed packages (`scheduler`, `webapp`).

- `python -m bench.solver` (`make bench`): the solver against the lottery and first-come-first-served;
- `python -m bench.city` (`make bench-city`): a Kunming-scale city allocated school by school;
- `python -m bench.load.rush bench` (`make bench-load`): parents on the JSON API under locust.

Results measured with them are in `docs/benchmarks.md`.
"""
