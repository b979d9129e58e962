"""The Responses API: ``input``/``instructions`` in, typed events out.

OpenAI sends each event as ``event:`` + ``data:``, the data carrying ``type`` and
``sequence_number``, and no ``[DONE]``; other servers (LiteLLM, vLLM) send data-only events and a
trailing ``[DONE]``.  Both work: an event's type is its data's ``type``.

    response.output_text.delta                 -> the answer file
    response.reasoning_summary_text.delta,
    response.reasoning_text.delta              -> the reasoning file
    response.refusal.delta                     -> the refusal file (the item is ``refused``)
    response.output_item.added (function_call),
    response.function_call_arguments.delta     -> <name>.tool_calls.json, as the API returns them
    response.completed                         -> complete: ``stop``, or ``tool_calls`` when the
                                                  output holds function calls and no message
    response.incomplete                        -> complete, reason mapped (max_output_tokens ->
                                                  ``length``, content_filter -> ``content_filter``)
    response.failed, error                     -> the attempt fails with the server's code: retried
                                                  unless the code blames the request (REQUEST_FAULTS)

Events of other types are ignored (new ones appear every few months); they still count as
activity for the idle timeout.  Usage comes from the final response object.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ..choices import REASONING, REFUSAL
from ..errors import AttemptError, LineError, RequestFaultError, StreamEventError
from ..sse import StreamState, error_message
from ..tokens import content_text
from .chat import decode_chunk

if TYPE_CHECKING:
    import openai

    from ..tokens import Counter

ROLES = frozenset({"system", "developer", "user", "assistant"})
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Error codes that say the request itself is at fault: asking again cannot help.  Any other code
# (server_error, rate_limit_exceeded, an overload, one we do not know) is retried.
REQUEST_FAULTS = frozenset(
    {
        "invalid_prompt",
        "invalid_request_error",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
        "context_length_exceeded",
        "model_not_found",
    }
)
# Chat parameters OpenAI's Responses API answers with a 400: an input error before anything is sent.
CHAT_ONLY = {
    "max_tokens": '"max_output_tokens"',
    "max_completion_tokens": '"max_output_tokens"',
    "response_format": '"text": {"format": ...}',
}
REASONING_EVENTS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


def _input_part(part: object, where: str) -> dict[str, Any]:
    """A chat content part as a Responses input part (text -> input_text, image_url -> input_image)."""
    if not isinstance(part, dict):
        raise LineError(f"{where} must be an object")
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        converted: dict[str, Any] = {"type": "input_image", "image_url": url}
        if isinstance(image, dict) and image.get("detail"):
            converted["detail"] = image["detail"]
        else:
            converted["detail"] = "auto"
        return converted
    if kind in ("input_text", "input_image", "input_file"):
        return part  # already a Responses part
    raise LineError(f"{where} of type {kind!r} cannot be sent to the Responses API (needs --api chat)")


def _input_item(message: dict[str, Any], where: str) -> dict[str, Any]:
    role = message["role"]
    if role not in ROLES or message.get("tool_calls") or message.get("function_call"):
        what = "a tool result" if role in ("tool", "function") else "an assistant tool call"
        raise LineError(f"{where} is {what}, which the Responses API takes only as its own items (needs --api chat)")
    content = message.get("content")
    if isinstance(content, list):
        if role == "assistant":
            raise LineError(f"{where}: an assistant message with parts needs --api chat")
        content = [_input_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    return {"role": role, "content": content}


def responses_usage(usage: Mapping[str, Any]) -> dict[str, Any] | None:
    """Usage under our names from a Response's usage object; None without counts."""
    output = usage.get("output_tokens")
    if not isinstance(output, int):
        return None
    counts: dict[str, Any] = {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": output}
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
        counts["reasoning_tokens"] = details["reasoning_tokens"]
    cached = usage.get("input_tokens_details")
    if isinstance(cached, dict) and isinstance(cached.get("cached_tokens"), int):
        counts["cached_tokens"] = cached["cached_tokens"]
    return counts


class FunctionCall:
    """One function call being assembled from a Responses stream."""

    __slots__ = ("arguments", "call_id", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.call_id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def item(self, item: Mapping[str, Any]) -> None:
        """The call's item, from ``output_item.added`` (arguments usually empty) or ``.done`` (whole)."""
        for key in ("id", "call_id", "name"):
            value = item.get(key)
            if isinstance(value, str) and value:
                setattr(self, key, value)
        arguments = item.get("arguments")
        if isinstance(arguments, str) and arguments:
            self.arguments = [arguments]

    def as_json(self) -> dict[str, Any]:
        """As the Responses API returns a function call in ``output``."""
        return {
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": "".join(self.arguments),
        }


def _raise_failure(error: object, event: str) -> None:
    code = error.get("code") if isinstance(error, dict) else None
    code = code if isinstance(code, str) and code else None
    message = error_message(error)
    shown = f"{message} ({code})" if code else message
    kind = "response_failed" if event == "response.failed" else "stream_error"
    if code is not None and code in REQUEST_FAULTS:
        raise RequestFaultError(shown, kind=kind, code=code, body={"error": error} if isinstance(error, dict) else None)
    raise StreamEventError(shown, kind=kind, code=code, body={"error": error} if isinstance(error, dict) else None)


class Responses:
    name = "responses"
    batch_url = "/v1/responses"
    input_fields: frozenset[str] = frozenset({"input", "instructions"})
    limit_param = "max_output_tokens"
    limit_params: tuple[str, ...] = ("max_output_tokens",)

    def from_prompt(self, prompt: str, system: str | None) -> dict[str, Any]:
        request: dict[str, Any] = {"input": prompt}
        if system:
            request["instructions"] = system
        return request

    def from_messages(self, messages: list[dict[str, Any]], system: str | None) -> dict[str, Any]:
        items = [_input_item(message, f"messages[{i}]") for i, message in enumerate(messages)]
        request: dict[str, Any] = {"input": items}
        if system and not any(m["role"] in ("system", "developer") for m in messages):
            request["instructions"] = system
        return request

    def from_body(self, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("input")
        if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
            raise LineError('"input" must be a non-empty string or list of input items')
        request: dict[str, Any] = {"input": value}
        instructions = body.get("instructions")
        if instructions is not None:
            if not isinstance(instructions, str):
                raise LineError('"instructions" must be a string')
            request["instructions"] = instructions
        return request

    def check_params(self, params: dict[str, Any]) -> None:
        if "n" in params:
            raise LineError('"n" is not a Responses API parameter (several choices need --api chat)')
        for name, instead in CHAT_ONLY.items():
            if name in params:
                raise LineError(f'"{name}" is a chat parameter; the Responses API takes {instead}')
        for i, tool in enumerate(params.get("tools") or ()):
            if isinstance(tool, dict) and tool.get("type") == "function" and "function" in tool:
                raise LineError(
                    f'tools[{i}] has the chat shape {{"type": "function", "function": {{...}}}}; the Responses '
                    'API takes {"type": "function", "name", "parameters", ...} (or use --api chat)'
                )
        if "messages" in params or "prompt" in params:
            raise LineError('"params" may not set the input; give "prompt" or "messages" on the line')

    def count_prompt(self, counter: Counter, request: Mapping[str, Any]) -> int:
        value = request.get("input")
        if isinstance(value, str):
            messages = [{"role": "user", "content": value}]
        else:
            messages = [
                {"role": str(item.get("role", "user")), "content": content_text(item.get("content"))}
                for item in value or ()
                if isinstance(item, dict)
            ]
        if request.get("instructions"):
            messages.insert(0, {"role": "system", "content": request["instructions"]})
        return counter.messages(messages)

    def open(self, client: openai.AsyncOpenAI, model: str, body: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        return client.responses.with_streaming_response.create(model=model, stream=True, extra_body=body)

    def stream_options(self, include_usage: bool) -> dict[str, Any]:
        return {"stream": True}  # usage always comes with the final response object

    def parse_event(self, data: bytes, state: StreamState, event: str | None) -> str | None:
        obj = decode_chunk(data)
        if obj is None:  # a trailing [DONE], as LiteLLM and vLLM send
            state.done = state.ended = True
            return None
        kind = obj.get("type") or event
        state.chunks += 1
        if kind == "response.output_text.delta":
            delta = obj.get("delta")
            return delta if isinstance(delta, str) and delta else None
        choices = state.choices
        if kind in REASONING_EVENTS:
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                choices.sink(REASONING, 0, delta)
        elif kind == "response.refusal.delta":
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                choices.refused.add(0)
                choices.sink(REFUSAL, 0, delta)
        elif kind == "response.function_call_arguments.delta":
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                self._call(state, obj).arguments.append(delta)
        elif kind == "response.function_call_arguments.done":
            arguments = obj.get("arguments")
            if isinstance(arguments, str):
                self._call(state, obj).arguments = [arguments]
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                self._call(state, obj).item(item)
        elif kind in ("response.created", "response.in_progress"):
            self._response(state, obj.get("response"))
        elif kind == "response.completed":
            response = self._response(state, obj.get("response"))
            output = response.get("output") or ()
            calls = any(isinstance(i, dict) and i.get("type") == "function_call" for i in output)
            text = any(isinstance(i, dict) and i.get("type") == "message" for i in output)
            self._finish(state, "tool_calls" if calls and not text else "stop")
        elif kind == "response.incomplete":
            response = self._response(state, obj.get("response"))
            details = response.get("incomplete_details") or {}
            reason = details.get("reason") if isinstance(details, dict) else None
            self._finish(state, INCOMPLETE_REASONS.get(str(reason), str(reason or "incomplete")))
        elif kind == "response.failed":
            response = self._response(state, obj.get("response"))
            _raise_failure(response.get("error") or {}, "response.failed")
        elif kind == "error":
            _raise_failure(obj.get("error") if isinstance(obj.get("error"), dict) else obj, "error")
        return None

    @staticmethod
    def _call(state: StreamState, obj: Mapping[str, Any]) -> FunctionCall:
        position = obj.get("output_index")
        position = position if isinstance(position, int) else 0
        return state.choices.call(0, position, FunctionCall)

    @staticmethod
    def _response(state: StreamState, response: object) -> Mapping[str, Any]:
        if not isinstance(response, dict):
            return {}
        if isinstance(response.get("id"), str):
            state.response_id = response["id"]
        if state.model is None and isinstance(response.get("model"), str):
            state.model = response["model"]
        usage = response.get("usage")
        if isinstance(usage, dict):
            state.usage = responses_usage(usage)
        return response

    @staticmethod
    def _finish(state: StreamState, reason: str) -> None:
        state.choices.finish(0, reason)
        state.finish_reason = reason
        state.ended = True  # usage came with it; nothing follows but perhaps a [DONE]

    def rejects_option(self, exc: AttemptError) -> bool:
        return False  # streamdump adds nothing optional to a Responses request

    def batch_body(
        self, entry: Mapping[str, Any], outputs: list[dict[str, Any]], *, created: int, token: str
    ) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        only = outputs[0] if outputs else {}
        content: list[dict[str, Any]] = []
        if only.get("content"):
            content.append({"type": "output_text", "text": only["content"], "annotations": []})
        if only.get("refusal"):
            content.append({"type": "refusal", "refusal": only["refusal"]})
        if content:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{token}",
                    "role": "assistant",
                    "status": "completed",
                    "content": content,
                }
            )
        for number, call in enumerate(only.get("tool_calls") or ()):
            output.append({"id": f"fc_{token}_{number}", "status": "completed", **call})
        finish = only.get("finish_reason")
        incomplete = finish in ("length", "content_filter")
        usage = entry.get("usage") or {}
        prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        return {
            "id": entry.get("response_id") or f"resp_{token}",
            "object": "response",
            "created_at": created,
            "status": "incomplete" if incomplete else "completed",
            "model": entry.get("model"),
            "output": output,
            "error": None,
            "incomplete_details": (
                {"reason": "max_output_tokens" if finish == "length" else "content_filter"} if incomplete else None
            ),
            "instructions": None,
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": None,
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": usage.get("cached_tokens") or 0, "cache_write_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": usage.get("reasoning_tokens") or 0},
                "total_tokens": prompt + completion,
            },
        }


FORMAT = Responses()
