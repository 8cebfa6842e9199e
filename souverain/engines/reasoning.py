"""Reasoning: a per-request thinking budget, and splitting thinking from the answer.

The budget works as in llama.cpp's `common/reasoning-budget` and vLLM's
`thinking_token_budget`: a logits processor watches for the start marker, counts the
tokens generated inside the thinking part, and once the budget is spent masks every logit
but the next token of a forced sequence (an optional message, then the end marker). Forced
tokens do not count against the budget. The splitter then separates thinking from the
answer by the marker text, holding back only what could be the start of a marker, so it
works on streams whatever the chunking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from souverain.chat import ChatRequest, Message
from souverain.config.schema import ReasoningConfig
from souverain.errors import InvalidRequest

# Mistral's `safe_prompt` guardrail, as published with Mistral 7B (paper, section 5.1).
SAFE_PROMPT = (
    "Always assist with care, respect, and truth. Respond with utmost utility yet securely. "
    "Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity."
)


def thinking_budget(request: ChatRequest, config: ReasoningConfig | None, model: str) -> int | None:
    """The request's thinking budget in tokens, None for unlimited.

    An explicit `reasoning_budget_tokens` wins over `reasoning_effort`; `none` means 0.
    """
    if config is None:
        if request.reasoning_budget_tokens is not None or request.reasoning_effort not in (None, "none"):
            raise InvalidRequest(
                f"model {model!r} is not configured as a reasoning model (no `reasoning` markers), so "
                "reasoning_effort and reasoning budgets do not apply",
                param="reasoning_effort" if request.reasoning_budget_tokens is None else "reasoning_budget_tokens",
                code="reasoning_unsupported",
            )
        return None
    if request.reasoning_budget_tokens is not None:
        return request.reasoning_budget_tokens
    if request.reasoning_effort == "none":
        return 0
    if request.reasoning_effort is not None:
        return config.efforts.get(request.reasoning_effort)
    return None


def with_system_prompts(request: ChatRequest, config: ReasoningConfig | None) -> list[Message]:
    """Messages with the prompts Mistral's API adds server-side: `safe_prompt` first,
    then the reasoning prompt for `prompt_mode: "reasoning"`."""
    prefix: list[Message] = []
    if request.safe_prompt:
        prefix.append(Message(role="system", content=SAFE_PROMPT))
    if request.prompt_mode == "reasoning":
        if config is None:
            raise InvalidRequest(
                "prompt_mode 'reasoning' needs a model configured with reasoning markers",
                param="prompt_mode",
                code="reasoning_unsupported",
            )
        prefix.append(Message(role="system", content=config.system_prompt.format(start=config.start, end=config.end)))
    return prefix + list(request.messages)


class BudgetProcessor:
    """A llama-cpp-python logits processor that enforces a thinking budget.

    Called once before each token is sampled with every token so far; the first call
    sees only the prompt. States: idle → (opening →) thinking → closing → done.
    """

    def __init__(
        self,
        start_ids: Sequence[int],
        end_ids: Sequence[int],
        *,
        budget: int | None,
        open_on_start: bool,
        message_ids: Sequence[int] = (),
    ) -> None:
        self.start_ids = list(start_ids)
        self.end_ids = list(end_ids)
        self.message_ids = list(message_ids)
        self.budget = budget
        self.open_on_start = open_on_start and budget != 0
        self.state = "idle"
        self.queue: list[int] = []
        self.thinking_tokens = 0
        self._prompt_len: int | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._prompt_len is None:
            self._prompt_len = len(input_ids)
            if self.open_on_start:
                self.state, self.queue = "opening", list(self.start_ids)
        else:
            self._observe(input_ids[self._prompt_len :])
        if self.queue:
            forced = self.queue.pop(0)
            scores[:] = -np.inf
            scores[forced] = 0.0
        return scores

    def _observe(self, generated: Any) -> None:
        """Account for the token sampled at the previous step."""
        if self.state == "opening":
            if not self.queue:
                self._enter_thinking()
        elif self.state == "idle":
            if _ends_with(generated, self.start_ids):
                self._enter_thinking()
        elif self.state == "thinking":
            self.thinking_tokens += 1
            if _ends_with(generated, self.end_ids):
                self.state = "done"
                self.thinking_tokens -= len(self.end_ids)
            else:
                self._close_if_spent()
        elif self.state == "closing" and not self.queue:
            self.state = "done"

    def _enter_thinking(self) -> None:
        self.state = "thinking"
        self.thinking_tokens = 0
        self._close_if_spent()

    def _close_if_spent(self) -> None:
        if self.budget is not None and self.thinking_tokens >= self.budget:
            self.state = "closing"
            self.queue = self.message_ids + self.end_ids


def _ends_with(generated: Any, marker: list[int]) -> bool:
    n = len(marker)
    return n > 0 and len(generated) >= n and [int(t) for t in generated[-n:]] == marker


class ThinkSplitter:
    """Splits generated text into ("reasoning", text) and ("content", text) pieces.

    Thinking is recognised only at the start of the output (after whitespace), where
    reasoning models put it. Anything that could still become a marker is held back
    until the next chunk decides it.
    """

    def __init__(self, start: str, end: str) -> None:
        self.start, self.end = start, end
        self.state = "before"
        self.buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buffer += text
        out: list[tuple[str, str]] = []
        while True:
            if self.state == "before":
                stripped = self.buffer.lstrip()
                if stripped.startswith(self.start):
                    self.buffer = stripped[len(self.start) :]
                    self.state = "thinking"
                    continue
                if self.start.startswith(stripped):
                    return out  # could still be the start marker
                self.state = "content"
                continue
            if self.state == "thinking":
                at = self.buffer.find(self.end)
                if at >= 0:
                    if at:
                        out.append(("reasoning", self.buffer[:at]))
                    self.buffer = self.buffer[at + len(self.end) :]
                    self.state = "after"
                    continue
                keep = _partial_suffix(self.buffer, self.end)
                if len(self.buffer) > keep:
                    out.append(("reasoning", self.buffer[: len(self.buffer) - keep]))
                    self.buffer = self.buffer[len(self.buffer) - keep :]
                return out
            if self.state == "after":
                # The newline(s) between the end marker and the answer belong to neither.
                self.buffer = self.buffer.lstrip("\n")
                if not self.buffer:
                    return out
                self.state = "content"
            if self.buffer:
                out.append(("content", self.buffer))
                self.buffer = ""
            return out

    def flush(self) -> list[tuple[str, str]]:
        """End of output: whatever is held back is what it is."""
        if not self.buffer:
            return []
        kind = "reasoning" if self.state == "thinking" else "content"
        text, self.buffer = self.buffer, ""
        return [(kind, text)]


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0
