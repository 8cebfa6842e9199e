"""Refuse what cannot fit the model's context before paying for it.

llama.cpp's tokenizer, given a prompt with many special tokens (every chat message adds
some), takes time that grows with the square of the prompt: 10,000 one-character
messages took 46 s to tokenize on one core, 100,000 would take over an hour, and the
engine serves no one else meanwhile. Whether a request fits is known earlier, from
lengths alone, by two lower bounds on its token count that cost one pass over the
messages:

- bytes: no token is longer than the vocabulary's longest piece, so a text of B bytes
  needs at least B / longest tokens;
- messages: the chat template adds tokens around every message (SmolLM2's adds six);
  measured once at load by rendering one and three messages, less two tokens a message
  for pieces that content may merge with.

A request whose bound plus its `max_tokens` exceeds `n_ctx` gets a 400
(`context_length_exceeded`) at once; one that passes is counted exactly by llama.cpp,
which refuses it the same way if the exact count does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from souverain.errors import InvalidRequest


@dataclass(frozen=True)
class ContextBound:
    n_ctx: int
    longest_piece: int
    """Bytes of the vocabulary's longest token."""
    per_message: int
    """Tokens every message adds at least, besides its content."""

    @classmethod
    def of(cls, llm: Any, n_ctx: int, template: str | None) -> ContextBound:
        vocab = llm.n_vocab()
        longest = max((len(llm.detokenize([t], special=True)) for t in range(vocab)), default=1)
        return cls(n_ctx=n_ctx, longest_piece=max(1, longest), per_message=_per_message(llm, template))

    def at_least(self, messages: list[dict[str, Any]]) -> int:
        size = sum(len(str(m.get("content") or "").encode()) + len(str(m.get("role") or "")) for m in messages)
        return max(math.ceil(size / self.longest_piece), self.per_message * len(messages))

    def check(self, messages: list[dict[str, Any]], max_tokens: int) -> None:
        needed = self.at_least(messages)
        if needed + max_tokens > self.n_ctx:
            raise InvalidRequest(
                f"the messages need at least {needed} tokens and max_tokens asks for {max_tokens} more, "
                f"past the model's context of {self.n_ctx} tokens; send fewer or shorter messages, "
                "or a smaller max_tokens",
                param="messages",
                code="context_length_exceeded",
            )


def _per_message(llm: Any, template: str | None) -> int:
    """Tokens the template adds per message, from a render of one and of three
    messages; 0 (no bound from message count) when the template cannot be rendered."""
    if not template:
        return 0
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        from llama_cpp.llama_types import ChatCompletionRequestMessage

        render = Jinja2ChatFormatter(template=template, eos_token="", bos_token="")
        one: list[ChatCompletionRequestMessage] = [{"role": "user", "content": "x"}]
        three = one + [{"role": "assistant", "content": "x"}, {"role": "user", "content": "x"}]

        def count(messages: list[ChatCompletionRequestMessage]) -> int:
            prompt = render(messages=messages).prompt
            return len(llm.tokenize(prompt.encode(), add_bos=False, special=True))

        # each added message: its template tokens, one content token, and up to two
        # template pieces that a real content could merge with
        return max(0, (count(three) - count(one)) // 2 - 3)
    except Exception:  # a template that needs other variables: no bound from it
        return 0
