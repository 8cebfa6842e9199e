"""Sovereign routing: each request only travels routes its data class allows (DESIGN.md, decide).

    policy.py   Policy, ClassRule: requirements per data class, in pipes terms (config)
    decide.py   decide(...) -> Choice | Refusal, the pure decision; unmet(rule, profile)
    health.py   HealthBook: circuit breakers and in-flight counts
    router.py   Router: candidates from the configuration and the pipes analysis

Import from the submodules: this package imports nothing eagerly, so that the
configuration schema can use `policy` without loading the pipes analyser.
"""
