"""Sovereign routing: each request only travels routes its data class allows (DESIGN.md, decide).

    Policy, ClassRule, unmet        policy.py: requirements per data class, in pipes terms
    decide(...) -> Choice | Refusal decide.py: the pure decision
    HealthBook                      health.py: circuit breakers and in-flight counts
"""

from souverain.routing.decide import Candidate, Choice, Health, Refusal, RequestFacts, decide
from souverain.routing.health import Breaker, HealthBook
from souverain.routing.policy import CLASSES, ClassRule, Policy, unmet

__all__ = [
    "CLASSES", "Breaker", "Candidate", "Choice", "ClassRule", "Health", "HealthBook", "Policy", "Refusal",
    "RequestFacts", "decide", "unmet",
]
