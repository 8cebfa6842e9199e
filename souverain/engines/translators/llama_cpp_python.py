"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`).

Its request types (llama_cpp/server/types.py, llama_types.py) and chat handlers decide
what can be asked:

- `response_format` knows only `json_object`, with an optional `schema` it turns into a
  grammar: `json_schema` is sent as `{"type": "json_object", "schema": ...}`.
- With a model's own chat template, a tool call is made only when `tool_choice` names the
  function (a grammar from its parameters); `auto` is not parsed (a server started with
  `chat_format: chatml-function-calling` does parse it: say so with `capabilities:
  tool_choice`). `required` with one tool is sent as naming it; with several, refused.
- Message content: parts only in user messages; an assistant message has no `null`
  content; roles are system, user, assistant, tool (`developer` → `system`).
- `max_completion_tokens` → `max_tokens`. Refused: `n` > 1 (ignored there),
  `reasoning_effort` and budgets (no reasoning controls). Streams carry no usage; the
  gateway counts one token per streamed content chunk instead.
"""

from __future__ import annotations

from typing import Any

from souverain.chat import ChatRequest, Message
from souverain.engines.translators import common
from souverain.engines.translators.common import Target


def _message(m: Message) -> dict[str, Any]:
    out = common.system_message(m)
    if out["role"] != "user" and isinstance(out.get("content"), list):
        out["content"] = common.as_text(out["content"])
    out.pop("name", None)
    return out


class LlamaCppPythonTranslator(common.OpenAIEmbeddings):
    flavor = "llama-cpp-python"

    def chat(self, request: ChatRequest, target: Target, *, stream: bool) -> dict[str, Any]:
        body = common.chat_body(request, target, stream=stream, message=_message)
        common.token_limit(body, "max_tokens")
        body.pop("parallel_tool_calls", None)  # not in its request type: one call per turn
        common.put(body, "response_format", common.llama_response_format(request, target))
        common.budget(request, target)
        common.gateway_side_prompts(request, target, body)
        return body
