"""An optional planner that sends commands to an OpenAI-compatible LLM endpoint.

The model is offered the same tools as the deterministic planner, in the
``tools`` format of the OpenAI chat-completions API, and responds with
``tool_calls`` or a final message. The runtime runs each call and sends the
result back as a ``tool`` message, until the model responds without tool
calls. Token counts
come from the ``usage`` object of each response.

The endpoint and key come from arguments or from the ``OMNITWIN_LLM_URL``
and ``OMNITWIN_LLM_KEY`` environment variables. The URL is the API root
(``https://host/v1``); ``/chat/completions`` is appended unless it is there.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from omnitwin.engine.agent.tools import ToolRegistry
from omnitwin.errors import ServerError, ValidationError

__all__ = ["LLMPlanner", "LLMReply", "LLMToolCall"]

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are the omnitwin network agent. omnitwin keeps a digital twin of a "
    "network: IP address management, devices with intended and detected "
    "state, drift between them, and the cabling topology. Answer the user's "
    "command by calling the tools; call a tool that changes state only when "
    "the command asks for that change without doubt. When the tools have "
    "given you what you need, answer in one or two sentences."
)
MAX_TOOL_RESULT_CHARS = 8000


@dataclass(frozen=True, slots=True)
class LLMToolCall:
    """A tool call requested by the model; ``error`` is set when its arguments
    are not a JSON object."""

    id: str
    name: str
    args: dict[str, Any]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LLMReply:
    """One chat-completions response: tool calls or a final message, and usage."""

    content: str | None
    tool_calls: list[LLMToolCall]
    message: dict[str, Any]
    usage: dict[str, int] = field(default_factory=dict)


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _tool_call(raw: dict[str, Any]) -> LLMToolCall:
    function = raw.get("function") or {}
    name = str(function.get("name", ""))
    text = function.get("arguments") or "{}"
    try:
        args = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        return LLMToolCall(str(raw.get("id", "")), name, {}, f"invalid JSON: {exc}")
    if not isinstance(args, dict):
        return LLMToolCall(str(raw.get("id", "")), name, {}, "arguments not an object")
    return LLMToolCall(str(raw.get("id", "")), name, args)


def parse_reply(data: Any) -> LLMReply:
    """Return the reply of a chat-completions response body.

    Raises
    ------
    ServerError
        The body has no ``choices[0].message``.
    """
    try:
        message = data["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ServerError(
            f"the LLM endpoint returned no choices[0].message: {str(data)[:200]}"
        ) from exc
    calls = [_tool_call(raw) for raw in message.get("tool_calls") or []]
    usage = data.get("usage") or {}
    counts = {
        name: int(usage.get(name) or 0)
        for name in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    assistant = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        assistant["tool_calls"] = message["tool_calls"]
    return LLMReply(message.get("content"), calls, assistant, counts)


class LLMPlanner:
    """Plan commands with a model behind an OpenAI-compatible endpoint.

    Parameters
    ----------
    model : str
        The model name sent in each request.
    registry : ToolRegistry
        The tools offered to the model.
    url, key : str, optional
        The API root and key; default ``OMNITWIN_LLM_URL`` and
        ``OMNITWIN_LLM_KEY``.
    timeout : float
        Seconds to wait for each response.

    Raises
    ------
    ValidationError
        No URL was given and ``OMNITWIN_LLM_URL`` is not set.
    """

    def __init__(
        self,
        model: str,
        registry: ToolRegistry,
        *,
        url: str | None = None,
        key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        url = url or os.environ.get("OMNITWIN_LLM_URL")
        if not url:
            message = (
                f"model {model!r} needs an OpenAI-compatible endpoint; set "
                "OMNITWIN_LLM_URL (and OMNITWIN_LLM_KEY) or omit model to use the "
                "offline planner"
            )
            raise ValidationError(message, details={"model": model})
        self.model = model
        self.registry = registry
        self.url = _endpoint(url)
        self._key = key or os.environ.get("OMNITWIN_LLM_KEY")
        self._timeout = timeout

    def first_messages(self, command: str) -> list[dict[str, Any]]:
        """Return the opening messages for one command."""
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": command},
        ]

    @staticmethod
    def tool_message(call: LLMToolCall, result: Any) -> dict[str, Any]:
        """Return the ``tool`` message that reports a call's result to the model."""
        text = json.dumps(result, default=str, separators=(",", ":"))
        if len(text) > MAX_TOOL_RESULT_CHARS:
            text = text[:MAX_TOOL_RESULT_CHARS] + "...(truncated)"
        return {"role": "tool", "tool_call_id": call.id, "content": text}

    async def complete(self, messages: list[dict[str, Any]]) -> LLMReply:
        """Send the conversation and return the model's reply.

        Raises
        ------
        ServerError
            The endpoint is unreachable, responds with an HTTP error, or
            returns a body that is not a chat completion.
        """
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        payload = {
            "model": self.model,
            "messages": messages,
            "tools": self.registry.specs(),
            "tool_choice": "auto",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self.url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            message = f"the LLM endpoint {self.url} failed: {exc}"
            raise ServerError(message) from exc
        if response.status_code >= 400:
            message = (
                f"the LLM endpoint {self.url} returned HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
            raise ServerError(message)
        try:
            data = response.json()
        except ValueError as exc:
            message = f"the LLM endpoint {self.url} returned a body that is not JSON"
            raise ServerError(message) from exc
        reply = parse_reply(data)
        logger.info(
            "model %s replied with %d tool calls, %d tokens",
            self.model,
            len(reply.tool_calls),
            reply.usage.get("total_tokens", 0),
        )
        return reply
