"""A small OpenAI- and Anthropic-compatible server on 127.0.0.1, standing in for a local vLLM/Ollama.

It answers the routes that spend money, matched by the end of the path (so an api_base with or without
/v1 works; any other POST is a chat): /v1/chat/completions, /v1/completions, /v1/embeddings,
/v1/responses, /v1/messages (Anthropic's), /v1/images/generations and /v1/audio/transcriptions.
`paths` counts the POSTs per path.

Behaviour is steered by directives in the request's text (the last message, the prompt, the input, a
transcription's `prompt` field), so concurrent callers never share state through the server:

    "fail=2 ..."          answer 503 to the first 2 requests carrying this exact text
    "status=503 ..."      always answer with that HTTP status
    "first_chunk_delay=0.3"  sleep before the first stream chunk (a cold instance)
    "chunk_delay=0.5"     sleep between stream chunks (a slow generation)
    "stream_fail_after=3" send 3 stream chunks, then drop the connection (litellm reads this
                          as the end of the stream: a short, successful answer)
    "stream_error_after=3"  send 3 stream chunks, then an error event (a failure mid-stream)
    "delay=0.5"           sleep before answering a non-streaming request
    "prompt_tokens=7 completion_tokens=5"  the usage it reports (defaults 12 and 8; on /v1/messages
                          prompt_tokens is the uncached input_tokens)
    "cached_tokens=4"     prompt tokens read from a cache (cache_read_input_tokens on /v1/messages)
    "reasoning_tokens=2"  completion tokens spent reasoning (not on /v1/messages)
    "cache_write_tokens=3"  /v1/messages: cache_creation_input_tokens
    "finish_reason=length"  a cut-short answer (stop_reason max_tokens on /v1/messages)
    "max_output=1"        /v1/responses: status incomplete, reason max_output_tokens
    "duration=2.5"        /v1/audio/transcriptions: the audio's length in seconds (default 1.0)
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
import struct
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DIRECTIVE = re.compile(r"(\w+)=([\w.]+)")
DEFAULT_PROMPT_TOKENS = 12
DEFAULT_COMPLETION_TOKENS = 8
REPLY_WORDS = ("Local", " reply", " from", " the", " fake", " model", ".")
REPLY = "".join(REPLY_WORDS)
# Path ending -> route; the first match wins, so /chat/completions comes before /completions.
ROUTES = {"/chat/completions": "chat", "/completions": "completions", "/embeddings": "embeddings",
          "/responses": "responses", "/messages": "messages", "/images/generations": "images",
          "/audio/transcriptions": "transcriptions"}
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def _text(content: Any) -> str:
    """A string, or the text of a list of strings and text parts (chat, Responses and Anthropic alike)."""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def _directives(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    if "messages" in body or not ("input" in body or "prompt" in body):
        content = (body.get("messages") or [{}])[-1].get("content", "")
    else:
        content = body.get("input", body.get("prompt", ""))
    if isinstance(content, list) and content and isinstance(content[-1], dict) and "content" in content[-1]:
        content = content[-1]["content"]  # Responses API input items: the last message's content
    text = _text(content)
    return text, dict(_DIRECTIVE.findall(text))


def _form(content_type: str, data: bytes) -> dict[str, Any]:
    """The text fields of a multipart/form-data body (the file is left out)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + data)
    return {str(part.get_param("name", header="content-disposition")): part.get_content()
            for part in message.iter_parts() if not part.get_filename()}


def _usage(directives: dict[str, str]) -> dict[str, Any]:
    """Chat/completions usage; the token details only when a directive asks for them."""
    usage: dict[str, Any] = {
        "prompt_tokens": int(directives.get("prompt_tokens", DEFAULT_PROMPT_TOKENS)),
        "completion_tokens": int(directives.get("completion_tokens", DEFAULT_COMPLETION_TOKENS)),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if "cached_tokens" in directives:
        usage["prompt_tokens_details"] = {"cached_tokens": int(directives["cached_tokens"])}
    if "reasoning_tokens" in directives:
        usage["completion_tokens_details"] = {"reasoning_tokens": int(directives["reasoning_tokens"])}
    return usage


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a burst of hundreds of connections must not wait on SYN retries
    daemon_threads = True


class FakeLLMServer:
    """Runs the server in a daemon thread; `base_url` is what a deployment's api_base takes."""

    def __init__(self, port: int = 0) -> None:
        self.seen: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), self._handler_class())
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _count(self, text: str, path: str) -> int:
        with self._lock:
            self.requests += 1
            self.seen[text] += 1
            self.paths[path] += 1
            return self.seen[text]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm the body can wait
            # for the client's delayed ACK (~40 ms), which a real server would not add.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                self._json(200, {"object": "list", "data": [{"id": "local-model", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                content_type = self.headers.get("Content-Type", "")
                body = _form(content_type, data) if content_type.startswith("multipart/") else json.loads(data or b"{}")
                path = self.path.split("?")[0].rstrip("/")
                route = next((name for end, name in ROUTES.items() if path.endswith(end)), "chat")
                text, directives = _directives(body)
                seen = server._count(text, path)
                status = int(directives.get("status", 200))
                if status == 200 and seen <= int(directives.get("fail", 0)):
                    status = 503
                if status != 200:
                    message = "local model unavailable"
                    self._json(status, {"type": "error", "error": {"type": "api_error", "message": message}}
                               if route == "messages" else {"error": {"message": message, "type": "server_error"}})
                    return
                model = str(body.get("model", "local-model"))
                self._id = uuid.uuid4().hex
                if body.get("stream") in (True, "true", "True"):
                    getattr(self, f"_{route}_stream")(model, body, directives)
                else:
                    time.sleep(float(directives.get("delay", 0)))
                    self._json(200, getattr(self, f"_{route}")(model, body, directives))

            def _chat(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                return {
                    "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                    "created": int(time.time()), "model": model, "usage": _usage(directives),
                    "choices": [{"index": 0, "finish_reason": directives.get("finish_reason", "stop"),
                                 "message": {"role": "assistant", "content": REPLY}}],
                }

            def _chat_stream(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> None:
                head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                        "created": int(time.time()), "model": model}
                finish = directives.get("finish_reason", "stop")
                chunks = [{**head, "choices": [{"index": 0, "delta": {"content": word},
                                                "finish_reason": finish if index == len(REPLY_WORDS) - 1 else None}]}
                          for index, word in enumerate(REPLY_WORDS)]
                self._stream(directives, [], chunks, [{**head, "choices": [], "usage": _usage(directives)}])

            def _completions(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                        "model": model, "usage": _usage(directives),
                        "choices": [{"index": 0, "text": REPLY, "logprobs": None,
                                     "finish_reason": directives.get("finish_reason", "stop")}]}

            def _completions_stream(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> None:
                head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                        "model": model}
                finish = directives.get("finish_reason", "stop")
                chunks = [{**head, "choices": [{"index": 0, "text": word, "logprobs": None,
                                                "finish_reason": finish if index == len(REPLY_WORDS) - 1 else None}]}
                          for index, word in enumerate(REPLY_WORDS)]
                include_usage = (body.get("stream_options") or {}).get("include_usage")
                self._stream(directives, [], chunks,
                             [{**head, "choices": [], "usage": _usage(directives)}] if include_usage else [])

            def _embeddings(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                inputs = body.get("input", "")
                inputs = inputs if isinstance(inputs, list) else [inputs]
                vectors: list[Any] = [[round(0.1 * (index + 1), 1), 0.5, -0.25, 1.0] for index in range(len(inputs))]
                if body.get("encoding_format") == "base64":  # the openai SDK asks for this by default
                    vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
                prompt_tokens = int(directives.get("prompt_tokens", DEFAULT_PROMPT_TOKENS))
                return {"object": "list", "model": model,
                        "data": [{"object": "embedding", "index": index, "embedding": vector}
                                 for index, vector in enumerate(vectors)],
                        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}

            def _responses(self, model: str, body: dict[str, Any], directives: dict[str, str],
                           status: str = "", output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
                """A Response object; by default the finished one, with its output message and usage."""
                incomplete = directives.get("max_output", "0") != "0"
                usage = _usage(directives)
                item = {"id": f"msg_{self._id}", "type": "message", "role": "assistant",
                        "status": "incomplete" if incomplete else "completed",
                        "content": [{"type": "output_text", "text": REPLY, "annotations": [], "logprobs": []}]}
                status = status or ("incomplete" if incomplete else "completed")
                return {
                    "id": f"resp_{self._id}", "object": "response", "created_at": int(time.time()),
                    "status": status, "model": model, "output": [item] if output is None else output,
                    "error": None, "incomplete_details": {"reason": "max_output_tokens"}
                    if status == "incomplete" else None,
                    "instructions": None, "max_output_tokens": body.get("max_output_tokens"), "metadata": {},
                    "parallel_tool_calls": True, "previous_response_id": None, "temperature": 1.0,
                    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
                    "truncation": "disabled",
                    "usage": None if status == "in_progress" else {
                        "input_tokens": usage["prompt_tokens"],
                        "input_tokens_details": {"cached_tokens": int(directives.get("cached_tokens", 0))},
                        "output_tokens": usage["completion_tokens"],
                        "output_tokens_details": {"reasoning_tokens": int(directives.get("reasoning_tokens", 0))},
                        "total_tokens": usage["total_tokens"]},
                }

            def _responses_stream(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> None:
                final = self._responses(model, body, directives)
                item = final["output"][0]
                where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
                pending = self._responses(model, body, directives, "in_progress", [])
                start: list[dict[str, Any]] = [
                    {"type": "response.created", "response": pending},
                    {"type": "response.in_progress", "response": pending},
                    {"type": "response.output_item.added", "output_index": 0,
                     "item": {**item, "status": "in_progress", "content": []}},
                    {"type": "response.content_part.added", **where,
                     "part": {**item["content"][0], "text": ""}},
                ]
                deltas = [{"type": "response.output_text.delta", **where, "delta": word, "logprobs": []}
                          for word in REPLY_WORDS]
                end: list[dict[str, Any]] = [
                    {"type": "response.output_text.done", **where, "text": REPLY, "logprobs": []},
                    {"type": "response.content_part.done", **where, "part": item["content"][0]},
                    {"type": "response.output_item.done", "output_index": 0, "item": item},
                    {"type": f"response.{final['status']}", "response": final},
                ]
                for number, event in enumerate(start + deltas + end):
                    event["sequence_number"] = number
                failed = {**self._responses(model, body, directives, "failed", []), "usage": None,
                          "error": {"code": "server_error", "message": "generation failed"}}
                error_at = len(start) + max(int(directives.get("stream_error_after", 0)), 0)
                self._stream(directives, start, deltas, end,
                             {"type": "response.failed", "sequence_number": error_at, "response": failed}, done=False)

            def _messages(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                return {
                    "id": f"msg_{self._id}", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": REPLY}],
                    "stop_reason": "max_tokens" if directives.get("finish_reason") == "length" else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": int(directives.get("prompt_tokens", DEFAULT_PROMPT_TOKENS)),
                              "output_tokens": int(directives.get("completion_tokens", DEFAULT_COMPLETION_TOKENS)),
                              "cache_creation_input_tokens": int(directives.get("cache_write_tokens", 0)),
                              "cache_read_input_tokens": int(directives.get("cached_tokens", 0))},
                }

            def _messages_stream(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> None:
                message = self._messages(model, body, directives)
                start: list[dict[str, Any]] = [
                    {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                          "usage": {**message["usage"], "output_tokens": 1}}},
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
                deltas = [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}
                          for word in REPLY_WORDS]
                stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
                output = {"output_tokens": message["usage"]["output_tokens"]}
                end: list[dict[str, Any]] = [{"type": "content_block_stop", "index": 0},
                       {"type": "message_delta", "delta": stop, "usage": output},
                       {"type": "message_stop"}]
                error = {"type": "error", "error": {"type": "overloaded_error", "message": "generation failed"}}
                self._stream(directives, start, deltas, end, error, done=False)

            def _images(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                usage = _usage(directives)
                return {"created": int(time.time()), "data": [{"b64_json": PIXEL_PNG}] * int(body.get("n") or 1),
                        "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
                                  "total_tokens": usage["total_tokens"],
                                  "input_tokens_details": {"text_tokens": usage["prompt_tokens"], "image_tokens": 0}}}

            def _transcriptions(self, model: str, body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
                duration = float(directives.get("duration", 1.0))
                if body.get("response_format") == "verbose_json":
                    return {"task": "transcribe", "language": "english", "duration": duration, "text": REPLY,
                            "segments": []}
                return {"text": REPLY, "usage": {"type": "duration", "seconds": duration}}

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, directives: dict[str, str], start: list[dict[str, Any]], deltas: list[dict[str, Any]],
                        end: list[dict[str, Any]], error: dict[str, Any] | None = None, done: bool = True) -> None:
                """Server-sent events: `start`, then `deltas` (the ones the stream directives cut or
                slow down), then `end`; OpenAI's chat and completions streams close with [DONE]."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                time.sleep(float(directives.get("first_chunk_delay", 0)))
                error_after = int(directives.get("stream_error_after", -1))
                fail_after = int(directives.get("stream_fail_after", -1))
                for event in start:
                    self._event(event)
                for index, event in enumerate(deltas):
                    if index == error_after:
                        self._event(error or {"error": {"message": "generation failed", "type": "server_error",
                                                        "code": "internal_error"}})
                        if done:
                            self._write(b"data: [DONE]\n\n")
                        self.close_connection = True
                        return
                    if index == fail_after:
                        self.close_connection = True
                        self.connection.shutdown(2)  # abrupt: no [DONE], no usage
                        return
                    self._event(event)
                    time.sleep(float(directives.get("chunk_delay", 0.01)))
                for event in end:
                    self._event(event)
                if done:
                    self._write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _event(self, payload: dict[str, Any]) -> None:
                """One event; typed ones (Responses API, Anthropic) are named as well."""
                name = f"event: {payload['type']}\n".encode() if "type" in payload else b""
                self._write(name + b"data: " + json.dumps(payload).encode() + b"\n\n")

            def _write(self, data: bytes) -> None:
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client went away
                    self.close_connection = True

        return Handler


if __name__ == "__main__":
    import sys

    fake = FakeLLMServer(int(sys.argv[1]) if len(sys.argv) > 1 else 8001).start()
    print(fake.base_url, flush=True)
    threading.Event().wait()
