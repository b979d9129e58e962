"""The route handler every wire format shares: what happens to a request for text before its
format answers it (the model check, the format's own checks, the rate limit, status faults),
then the stream or the whole answer."""

from __future__ import annotations

import email.utils
import time

from .exchange import Exchange, Handler
from .formats import Format, Generation
from .http import error_body, invalid_json, model_not_found
from .script import Fault, pick_fault
from .state import SimRequest


def generation_route(wire: Format) -> Handler:
    """The handler of ``POST`` for one wire format."""

    async def handle(ex: Exchange) -> bool:
        return await _serve(ex, wire)

    return handle


async def _serve(ex: Exchange, wire: Format) -> bool:
    sim, request = ex.sim, ex.request
    config, stats = sim.config, sim.stats
    body = ex.json_object()
    if body is None:
        return await ex.json(400, invalid_json())
    prompt = wire.prompt(body)
    nth = sim.seen(prompt)
    fault = pick_fault(list(config.faults), prompt, nth)
    record = SimRequest(
        request.at,
        request.wall,
        request.method,
        request.path,
        request.headers,
        body,
        prompt,
        nth,
        fault.kind if fault else None,
    )
    stats.requests.append(record)
    number = len(stats.requests)
    request_id = {"x-request-id": f"req_sim_{number}"}  # as OpenAI sends it
    if config.models and body.get("model") not in config.models:
        record.fault = "model_not_found"
        return await ex.json(404, model_not_found(body.get("model")), request_id)
    problem = wire.check(body)
    if problem is not None:
        record.fault = "invalid_request"
        payload = error_body(problem.message, param=problem.param, code=problem.code)
        return await ex.json(400, payload, request_id)
    limit_headers = sim.rate_limit(record.at)
    if limit_headers is not None and limit_headers["x-ratelimit-remaining-requests"] == "-1":
        record.fault = "rate_limit"
        stats.rate_limited += 1
        limit_headers["x-ratelimit-remaining-requests"] = "0"
        limit_headers["Retry-After"] = limit_headers["x-ratelimit-reset-requests"].rstrip("s")
        payload = {"error": {"message": "simulated rate limit", "type": "requests"}}
        return await ex.json(429, payload, {**request_id, **limit_headers})
    if config.reject_stream_options and "stream_options" in body:
        record.fault = "stream_options"
        message = "Unrecognized request argument supplied: stream_options"
        return await ex.json(400, error_body(message), request_id)
    if fault is not None and fault.kind == "status":
        return await _status_fault(ex, fault, request_id)
    if fault is not None and fault.kind == "echo-auth":  # a proxy that quotes the key back
        auth = request.authorization
        payload = error_body(f"invalid request header: authorization: {auth}")
        return await ex.json(int(fault.value or 400), payload, {**request_id, "x-echo-authorization": auth})
    if fault is not None and fault.kind == "redirect":
        location = f"http://127.0.0.1:{sim.port}/elsewhere{request.path}"
        return await ex.json(307, error_body("moved"), {**request_id, "Location": location})
    generation = Generation(body, prompt, fault, config, number, int(time.time()))
    if not body.get("stream"):
        return await ex.json(200, wire.complete(generation), request_id)
    try:
        return await ex.play(wire.stream(generation), fault, {**request_id, **(limit_headers or {})})
    finally:
        record.ended = time.monotonic()


async def _status_fault(ex: Exchange, fault: Fault, headers: dict[str, str]) -> bool:
    status = int(fault.value or 500)
    extra = dict(headers)
    if "retry_after" in fault.params:
        extra["Retry-After"] = f"{fault.params['retry_after']:g}"
    if "retry_after_ms" in fault.params:
        extra["retry-after-ms"] = f"{fault.params['retry_after_ms']:g}"
    if "retry_after_date" in fault.params:
        extra["Retry-After"] = email.utils.formatdate(time.time() + fault.params["retry_after_date"], usegmt=True)
    kind = "rate_limit_exceeded" if status == 429 else "invalid_request_error" if status < 500 else "server_error"
    payload = {"error": {"message": f"simulated {status}", "type": kind, "code": fault.code or status}}
    return await ex.json(status, payload, extra)
