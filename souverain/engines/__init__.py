"""Inference engines behind one protocol (see `base.Engine`)."""

from __future__ import annotations

from souverain.config import LlamaCppModel, ModelConfig, OpenAIHTTPModel
from souverain.engines.base import Engine


def build_engine(config: ModelConfig) -> Engine:
    """One engine instance per configured model."""
    if isinstance(config, LlamaCppModel):
        from souverain.engines.supervisor import WorkerEngine

        return WorkerEngine(config)  # the model runs in a supervised worker process
    if isinstance(config, OpenAIHTTPModel):
        from souverain.engines.openai_http import OpenAIHTTPEngine

        return OpenAIHTTPEngine(config)
    raise TypeError(f"no engine for {type(config).__name__}")


__all__ = ["Engine", "build_engine"]
