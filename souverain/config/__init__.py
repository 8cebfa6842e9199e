"""Configuration: schema (typed structs) and loader (YAML with line-accurate errors)."""

from souverain.config.loader import load_config, parse_config
from souverain.config.schema import Config, LlamaCppModel, ModelConfig, OpenAIHTTPModel, json_schema

__all__ = ["Config", "LlamaCppModel", "ModelConfig", "OpenAIHTTPModel", "json_schema", "load_config", "parse_config"]
