"""Inference engines behind one protocol (see `base.Engine`)."""

from __future__ import annotations

from pathlib import Path

from souverain.config import LlamaCppModel, ModelConfig, OpenAIHTTPModel
from souverain.engines.base import Engine


def build_engine(config: ModelConfig, state_dir: Path | None = None) -> Engine:
    """One engine instance per configured model. `state_dir`: where gateway processes
    on this machine meet the embedded engine's workers they share (`shared.py`)."""
    if isinstance(config, LlamaCppModel):
        from souverain.engines.supervisor import WorkerEngine

        return WorkerEngine(config, state_dir)  # the model runs in a supervised worker process
    if isinstance(config, OpenAIHTTPModel):
        from souverain.engines.openai_http import OpenAIHTTPEngine

        return OpenAIHTTPEngine(config)
    raise TypeError(f"no engine for {type(config).__name__}")


__all__ = ["Engine", "build_engine"]
