"""Original values back into an answer: a whole one, or a stream across chunk boundaries.

    restore_message(result, vault)      # a chat.completion dict, in place
    r = StreamRestorers(vault); r.apply(chunk) for each chat.completion.chunk dict

Content, reasoning and each tool call's arguments are restored (arguments with JSON
escaping, since they are JSON text). In a stream each of those is its own text with its
own `Restorer`, so a placeholder split across chunks is restored whole; the end of a
choice (`finish_reason`) releases whatever was held back.
"""

from __future__ import annotations

from typing import Any

from souverain.privacy.vault import Restorer, Vault


def restore_message(result: dict[str, Any], vault: Vault) -> None:
    for choice in result.get("choices", []):
        message = choice.get("message") or {}
        for key in ("content", "reasoning_content"):
            if isinstance(message.get(key), str):
                message[key] = vault.restore(message[key])
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = vault.restore(fn["arguments"], json_escape=True)


class StreamRestorers:
    """One restorer per stream of text (content, reasoning, each tool call's arguments)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.text: dict[str, Restorer] = {}

    def _r(self, key: str, json_escape: bool = False) -> Restorer:
        if key not in self.text:
            self.text[key] = self.vault.restorer(json_escape=json_escape)
        return self.text[key]

    def apply(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            for key in ("content", "reasoning_content"):
                if isinstance(delta.get(key), str):
                    delta[key] = self._r(key).feed(delta[key])
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = self._r(f"tool{call.get('index', 0)}", True).feed(fn["arguments"])
            if choice.get("finish_reason"):
                for key in ("content", "reasoning_content"):
                    if key in self.text:
                        tail = self.text.pop(key).flush()
                        if tail:
                            delta[key] = (delta.get(key) or "") + tail
                for key in [k for k in self.text if k.startswith("tool")]:
                    tail = self.text.pop(key).flush()
                    if tail:
                        delta.setdefault("tool_calls", []).append(
                            {"index": int(key[4:]), "function": {"arguments": tail}}
                        )
                choice["delta"] = delta
