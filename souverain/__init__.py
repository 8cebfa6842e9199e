"""Souverain: a self-hosted AI gateway that keeps data on routes its owner allows."""

__version__ = "0.1.0"
