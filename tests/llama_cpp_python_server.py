"""Run llama-cpp-python's own OpenAI-compatible server (`llama_cpp.server`, from PyPI) for
the conformance tests: `python tests/llama_cpp_python_server.py PORT MODEL_PATH N_CTX`.

The server is theirs: their `create_app` and settings, served by uvicorn, as
`python -m llama_cpp.server` does. The one thing done here is loading llama.cpp's CPU
backend: the portable build loads it dynamically (souverain/engines/cpu.py), and
`python -m llama_cpp.server` alone would find none. Three models, by alias:

- `smollm2`: the GGUF's own chat template;
- `smollm2-fc`: `chat_format: chatml-function-calling` (parses tool_choice auto);
- `smollm2-embed`: `embedding: true`.
"""

from __future__ import annotations

import sys


def main() -> None:
    port, model, n_ctx = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    from souverain.engines import cpu

    cpu.load(cpu.choose(cpu.lib_dir()))

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    common = {"model": model, "n_ctx": n_ctx, "n_threads": 1, "n_threads_batch": 1, "verbose": False}
    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=port),
        model_settings=[
            ModelSettings(model_alias="smollm2", **common),
            ModelSettings(model_alias="smollm2-fc", chat_format="chatml-function-calling", **common),
            ModelSettings(model_alias="smollm2-embed", embedding=True, **common),
        ],
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
