"""One translator per upstream flavor, behind one interface (envoy-ai-gateway style).

A translator turns the internal request (`souverain/chat.py`, OpenAI's field names) into
the exact body one kind of upstream expects, using what that upstream can do
(`capabilities.py`): a field is passed through, translated into the upstream's own form,
or the request is refused with `Unsupported` (a 400 naming the model and the missing
capability) before anything is sent. The engine seals what the translator returns, so
what is classified is what is sent (`souverain/outbound.py`).

Every translator's file has its own tests (tests/test_translators_<flavor>.py); what each
one does is tabled in docs/dialects.md.
"""

from __future__ import annotations

from typing import Any, Protocol

from souverain.chat import ChatRequest
from souverain.config.schema import Flavor, OpenAIHTTPModel
from souverain.engines.translators.capabilities import (
    TABLE,
    Capabilities,
    Unsupported,
    resolve,
)
from souverain.engines.translators.common import Target


class Translator(Protocol):
    flavor: str  # the `Flavor` it speaks

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        """The body for POST {base_url}/chat/completions; raises `Unsupported` (or
        another `InvalidRequest`) for what the upstream cannot be asked."""

    def embed(self, texts: list[str], target: Target) -> dict[str, Any]:
        """The body for POST {base_url}/embeddings."""


def translator_for(flavor: Flavor) -> Translator:
    """The translator of `flavor` (each lives in its own module)."""
    from souverain.engines.translators import (
        llama_cpp_python,
        llama_server,
        mistral,
        ollama,
        openai,
        tgi,
        vllm,
    )

    translators: dict[str, Translator] = {
        "openai": openai.OpenAITranslator(),
        "vllm": vllm.VLLMTranslator(),
        "mistral": mistral.MistralTranslator(),
        "llama-server": llama_server.LlamaServerTranslator(),
        "llama-cpp-python": llama_cpp_python.LlamaCppPythonTranslator(),
        "tgi": tgi.TGITranslator(),
        "ollama": ollama.OllamaTranslator(),
    }
    return translators[flavor]


def target_for(config: OpenAIHTTPModel) -> Target:
    """The upstream model a configured `openai_http` model sends to, with its capabilities."""
    return Target(
        name=config.name,
        upstream_model=config.upstream_model or config.name,
        flavor=config.flavor,
        capabilities=resolve(config),
        reasoning_system_prompt=config.reasoning_system_prompt,
    )


__all__ = ["TABLE", "Capabilities", "Target", "Translator", "Unsupported", "target_for", "translator_for"]
