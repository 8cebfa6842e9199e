"""The `tgi` translator (Hugging Face Text Generation Inference, Messages API)."""

from __future__ import annotations

import pytest
from translation import CORPUS, SCHEMA, USER, sent, sent_embed

from souverain.errors import Unsupported


def test_grammar_in_tgis_form() -> None:
    assert sent("tgi", CORPUS[9])["response_format"] == {"type": "json_object", "value": SCHEMA}
    assert sent("tgi", CORPUS[11])["response_format"] == {"type": "json_object", "value": {"type": "object"}}
    assert "response_format" not in sent("tgi", CORPUS[12])  # text: nothing to constrain


def test_translations() -> None:
    body = sent("tgi", {"messages": USER, "max_completion_tokens": 9}, stream=True)
    assert body["max_tokens"] == 9 and body["stream_options"] == {"include_usage": True}
    assert sent("tgi", CORPUS[6])["tool_choice"] == "required"
    assert sent("tgi", CORPUS[13])["logprobs"] is True


@pytest.mark.parametrize(("index", "code"), [(14, "n_unsupported"), (15, "reasoning_unsupported")])
def test_refused_before_sending(index: int, code: str) -> None:
    with pytest.raises(Unsupported) as err:
        sent("tgi", CORPUS[index])
    assert err.value.code == code


def test_embeddings_only_where_declared() -> None:
    with pytest.raises(Unsupported):
        sent_embed("tgi", ["x"])
    assert sent_embed("tgi", ["x"], embeddings=True) == {"model": "up", "input": ["x"]}
