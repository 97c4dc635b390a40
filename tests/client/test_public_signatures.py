"""The clients' chat methods take chat_request's parameters (written once, in _requests): what a user sees of
them, in help(), inspect and a type checker, is still the full keyword list, and bad input still fails at the
call (the await, for AsyncClient.chat_text) before anything is sent."""

from __future__ import annotations

import inspect

import pytest
from modelyard_client import AsyncClient, Client, InvalidArgument

OPTIONS = {
    "model": "auto",
    "system": None,
    "temperature": None,
    "top_p": None,
    "max_tokens": None,
    "stop": None,
    "seed": None,
    "provider": None,
    "strategy": None,
    "max_cost_usd": None,
    "task": None,
    "request_id": None,
    "tools": None,
    "tool_choice": None,
    "parallel_tool_calls": None,
    "response_format": None,
    "logprobs": None,
    "presence_penalty": None,
    "frequency_penalty": None,
    "reasoning_effort": None,
}
RETURNS: dict[tuple[type, str], str] = {
    (Client, "chat"): "Iterator[ChatEvent]",
    (Client, "chat_text"): "ChatResult",
    (AsyncClient, "chat"): "AsyncIterator[ChatEvent]",
    (AsyncClient, "chat_text"): "ChatResult",
}


@pytest.mark.parametrize(("cls", "name"), list(RETURNS))
def test_chat_methods_show_every_option_with_its_default(cls: type, name: str) -> None:
    method = getattr(cls, name)
    signature = inspect.signature(method)
    self_, prompt, *options = signature.parameters.values()
    assert (self_.name, prompt.name) == ("self", "prompt_or_messages")
    assert prompt.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options)
    assert {p.name: p.default for p in options} == OPTIONS
    assert signature.return_annotation == RETURNS[cls, name]
    assert method.__name__ == name
    assert method.__doc__


def test_async_chat_text_is_a_coroutine_function_and_chat_is_not() -> None:
    assert inspect.iscoroutinefunction(AsyncClient.chat_text)
    assert not inspect.iscoroutinefunction(AsyncClient.chat)
    assert not inspect.iscoroutinefunction(Client.chat_text)


def test_bad_input_fails_at_the_call_before_anything_is_sent() -> None:
    with Client("127.0.0.1:1") as client:
        with pytest.raises(InvalidArgument, match="strategy"):
            client.chat("hi", strategy="no-such-strategy")  # not iterated: raised at the call
        with pytest.raises(InvalidArgument, match="reasoning_effort"):
            client.chat_text("hi", reasoning_effort="extreme")
        with pytest.raises(TypeError):
            client.chat("hi", no_such_option=1)  # type: ignore[call-arg]


async def test_bad_input_fails_at_the_await_of_the_async_client() -> None:
    async with AsyncClient("127.0.0.1:1") as client:
        pending = client.chat_text("hi", strategy="no-such-strategy")
        with pytest.raises(InvalidArgument, match="strategy"):
            await pending
        with pytest.raises(InvalidArgument, match="logprobs"):
            client.chat("hi", logprobs=-1)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_constructors_take_address_then_keywords(cls: type) -> None:
    parameters = inspect.signature(cls).parameters.values()
    assert [(p.name, p.kind.name, p.default) for p in parameters] == [
        ("address", "POSITIONAL_OR_KEYWORD", None),
        ("api_key", "KEYWORD_ONLY", None),
        ("timeout", "KEYWORD_ONLY", None),
        ("tls", "KEYWORD_ONLY", None),
    ]
