"""Reasoning budget: the logits processor and splitter, then end to end on the real model.

SmolLM2-135M is not a reasoning model, so the end-to-end tests configure it with
`open_on_start`: the gateway forces `<think>` as the first generated tokens, the model
writes whatever it writes, and the budget forces `</think>` when it is spent. That is the
same mechanism that caps `[THINK]...[/THINK]` on Mistral's reasoning models.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest
from conftest import Server, http
from mistralai.client import Mistral

from souverain.engines.reasoning import BudgetProcessor, ThinkSplitter

THINK = "smollm2-think"


# -- the splitter ------------------------------------------------------------------------


def split_all(pieces: list[str], start: str = "<think>", end: str = "</think>") -> tuple[str, str]:
    splitter = ThinkSplitter(start, end)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    reasoning = "".join(t for k, t in out if k == "reasoning")
    content = "".join(t for k, t in out if k == "content")
    return reasoning, content


@pytest.mark.parametrize("start,end", [("<think>", "</think>"), ("[THINK]", "[/THINK]")])
def test_splitter_at_every_split_point(start: str, end: str) -> None:
    text = f"  {start}weigh the options{end}\nThe answer is 42."
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert split_all([text[:i], text[i:j], text[j:]], start, end) == (
                "weigh the options",
                "The answer is 42.",
            ), (i, j)


def test_splitter_without_thinking_and_unclosed() -> None:
    assert split_all(["Plain ", "answer <think> later"]) == ("", "Plain answer <think> later")
    assert split_all(["<thi", "nk>still thinking </thi"]) == ("still thinking </thi", "")
    assert split_all(["<th", "is is not a marker"]) == ("", "<this is not a marker")


# -- the processor -------------------------------------------------------------------------

START, END, VOCAB = [7, 8], [9], 20


def drive(processor: BudgetProcessor, choices: Iterator[int], steps: int) -> list[int]:
    """Simulate sampling: the model 'wants' the next token of `choices` unless forced."""
    ids = [1, 2, 3]  # the prompt
    generated = []
    for _ in range(steps):
        scores = np.zeros(VOCAB, dtype=np.float32)
        wanted = next(choices)
        scores[wanted] = 1.0
        scores = processor(np.array(ids), scores)
        token = int(np.argmax(scores))
        ids.append(token)
        generated.append(token)
    return generated


def test_budget_forces_the_end_marker() -> None:
    processor = BudgetProcessor(START, END, budget=3, open_on_start=True)
    out = drive(processor, iter([5] * 100), 8)
    assert out == [7, 8, 5, 5, 5, 9, 5, 5]
    assert processor.thinking_tokens == 3 and processor.state == "done"


def test_budget_message_is_forced_before_the_end() -> None:
    processor = BudgetProcessor(START, END, budget=2, open_on_start=True, message_ids=[11, 12])
    assert drive(processor, iter([5] * 100), 8) == [7, 8, 5, 5, 11, 12, 9, 5]


def test_budget_waits_for_the_model_to_open_thinking() -> None:
    processor = BudgetProcessor(START, END, budget=2, open_on_start=False)
    out = drive(processor, iter([4, 7, 8, 5, 5, 5, 5, 5]), 8)
    assert out == [4, 7, 8, 5, 5, 9, 5, 5]


def test_model_closing_on_its_own_is_left_alone() -> None:
    processor = BudgetProcessor(START, END, budget=10, open_on_start=True)
    out = drive(processor, iter([0, 0, 5, 9, 4, 4, 4]), 7)
    assert out == [7, 8, 5, 9, 4, 4, 4]
    assert processor.thinking_tokens == 1


def test_zero_budget_does_not_open_and_closes_at_once() -> None:
    assert drive(BudgetProcessor(START, END, budget=0, open_on_start=True), iter([5] * 10), 3) == [5, 5, 5]
    processor = BudgetProcessor(START, END, budget=0, open_on_start=False)
    assert drive(processor, iter([7, 8, 5, 5, 5]), 5) == [7, 8, 9, 5, 5]
    assert processor.thinking_tokens == 0


def test_unlimited_budget_never_forces() -> None:
    processor = BudgetProcessor(START, END, budget=None, open_on_start=True)
    assert drive(processor, iter([5] * 50), 30)[2:] == [5] * 28


# -- end to end on the embedded model -----------------------------------------------------


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f"""
models:
  - name: {THINK}
    engine: llamacpp
    embeddings: false
    reasoning:
      start: "<think>"
      end: "</think>"
      open_on_start: true
      efforts: {{minimal: 3, low: 6, medium: 12, high: 24, xhigh: 48, max: 96}}
  - name: plain
    engine: llamacpp
    embeddings: false
"""
    server = Server(tmp_path_factory.mktemp("thinker"), config)
    server.wait_ready()
    yield server
    server.stop()


QUESTION = [{"role": "user", "content": "What is 12 times 3? Explain."}]


def test_explicit_budget_caps_thinking(thinker: Server) -> None:
    client = openai.OpenAI(base_url=f"{thinker.url}/v1", api_key=thinker.key, max_retries=0)
    out = client.chat.completions.create(
        model=THINK, messages=QUESTION, max_tokens=60, temperature=0, seed=1, extra_body={"reasoning_budget_tokens": 5}
    )
    message = out.choices[0].message
    reasoning = message.model_extra.get("reasoning_content")
    assert reasoning and "<think>" not in reasoning and "</think>" not in reasoning
    assert message.content and "</think>" not in message.content
    assert out.usage.completion_tokens_details.reasoning_tokens == 5
    # The thinking the model was allowed is exactly five tokens of it.
    assert len(client_tokens(thinker, reasoning)) <= 6


def client_tokens(server: Server, text: str) -> list[int]:
    from llama_cpp import Llama

    from souverain.engines.llamacpp import bundled_model_path

    llm = Llama(str(bundled_model_path()), vocab_only=True, verbose=False)
    return llm.tokenize(text.encode(), add_bos=False)


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 3), ("low", 6), ("medium", 12)])
def test_effort_maps_to_the_configured_budget(thinker: Server, effort: str, budget: int) -> None:
    response = http.post(
        f"{thinker.url}/v1/chat/completions",
        json={
            "model": THINK,
            "messages": QUESTION,
            "max_tokens": 80,
            "temperature": 0,
            "seed": 1,
            "reasoning_effort": effort,
        },
        headers=thinker.headers(),
        timeout=60,
    ).json()
    assert 0 < response["usage"]["completion_tokens_details"]["reasoning_tokens"] <= budget


def test_effort_none_turns_thinking_off(thinker: Server) -> None:
    response = http.post(
        f"{thinker.url}/v1/chat/completions",
        json={"model": THINK, "messages": QUESTION, "max_tokens": 20, "reasoning_effort": "none"},
        headers=thinker.headers(),
        timeout=60,
    ).json()
    message = response["choices"][0]["message"]
    assert "reasoning_content" not in message and "<think>" not in message["content"]
    assert response["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_streamed_thinking_then_answer(thinker: Server) -> None:
    client = openai.OpenAI(base_url=f"{thinker.url}/v1", api_key=thinker.key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=THINK,
            messages=QUESTION,
            max_tokens=40,
            temperature=0,
            seed=1,
            stream=True,
            extra_body={"reasoning_budget_tokens": 8},
        )
    )
    kinds = []
    for c in chunks:
        if not c.choices:
            continue
        delta = c.choices[0].delta
        if (delta.model_extra or {}).get("reasoning_content"):
            kinds.append("r")
        elif delta.content:
            kinds.append("c")
    assert "r" in kinds and "c" in kinds
    assert kinds.index("c") > max(i for i, k in enumerate(kinds) if k == "r")
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 8


def test_mistral_sdk_gets_thinking_chunks(thinker: Server) -> None:
    mistral = Mistral(api_key=thinker.key, server_url=thinker.url)
    out = mistral.chat.complete(
        model=THINK,
        messages=QUESTION,
        max_tokens=40,
        temperature=0,
        random_seed=1,
        http_headers={"x-souverain-reasoning-budget": "4"},
    )
    content = out.choices[0].message.content
    assert isinstance(content, list) and content[0].type == "thinking" and content[1].type == "text"
    assert content[0].thinking[0].text and content[1].text
    events = list(
        mistral.chat.stream(
            model=THINK,
            messages=QUESTION,
            max_tokens=30,
            temperature=0,
            reasoning_effort="minimal",
        )
    )
    deltas = [e.data.choices[0].delta.content for e in events if e.data.choices and e.data.choices[0].delta.content]
    assert any(isinstance(d, list) and d[0].type == "thinking" for d in deltas)
    assert any(isinstance(d, str) for d in deltas)


def test_reasoning_on_a_plain_model_is_a_clear_400(thinker: Server) -> None:
    for extra in ({"reasoning_effort": "high"}, {"reasoning_budget_tokens": 10}, {"prompt_mode": "reasoning"}):
        response = http.post(
            f"{thinker.url}/v1/chat/completions",
            json={"model": "plain", "messages": QUESTION, "max_tokens": 5, **extra},
            headers=thinker.headers(),
        )
        assert response.status_code == 400, extra
        body = response.json()
        # prompt_mode is a Mistral-only field, so that answer comes in Mistral's error shape.
        error = body if "prompt_mode" in extra else body["error"]
        assert error["code"] == "reasoning_unsupported"
    bad_header = http.post(
        f"{thinker.url}/v1/chat/completions",
        json={"model": THINK, "messages": QUESTION, "max_tokens": 5},
        headers={**thinker.headers(), "x-souverain-reasoning-budget": "lots"},
    )
    assert bad_header.status_code == 400
