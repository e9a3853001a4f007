"""The llm:NAME engine for a session: which encoder the sidebar's choices call for (the endpoint and key
routed as for naming), and the key that says when it must be made anew.
"""

from __future__ import annotations

from inbedder_app.config import AppConfig
from inbedder_app.resources import shared_answer_embedder, shared_answer_store
from inbedder_app.state import Choices
from inbedder_core.answers.engine import LLMAnswerEncoder, llm_model_name, load_answer_encoder
from inbedder_core.errors import InBedderError
from inbedder_core.name.endpoint import key_tag, llm_endpoint


def engine_key(model: str, choices: Choices, config: AppConfig) -> str:
    """What the encoder depends on: the device; for an llm:NAME model also the endpoint, a tag of its key and
    the batch (a change makes a new encoder, whose answers still come from the answers cache)."""
    if llm_model_name(model) is None:
        return choices.device
    endpoint = llm_endpoint(choices.naming[1], choices.llm_api_key, config.llm_base_url, config.api_key)
    return f"{choices.device}|{endpoint.shown}|{key_tag(endpoint.api_key)}|{choices.llm_batch}"


def answer_encoder(model: str, choices: Choices, config: AppConfig) -> LLMAnswerEncoder:
    """The llm:NAME engine at the endpoint set under Cluster names, with the same key routing as naming."""
    endpoint = llm_endpoint(choices.naming[1], choices.llm_api_key, config.llm_base_url, config.api_key)
    if endpoint.problem:
        raise InBedderError(f"Answers from an LLM: {endpoint.problem}. Set the endpoint and key under Cluster "
                            "names in the sidebar (the server's key goes only to the configured endpoint), then Run")
    return load_answer_encoder(model, api_key=endpoint.api_key, base_url=endpoint.base_url,
                               embedder=shared_answer_embedder(choices.device),
                               store=shared_answer_store(str(config.cache_dir)), batch_size=choices.llm_batch)
