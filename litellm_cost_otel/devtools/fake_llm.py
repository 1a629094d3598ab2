"""A small OpenAI-compatible chat server on 127.0.0.1, standing in for a local vLLM/Ollama.

Behaviour is steered by directives in the last user message, so concurrent callers never
share state through the server:

    "fail=2 ..."          answer 503 to the first 2 requests carrying this exact message
    "status=503 ..."      always answer with that HTTP status
    "first_chunk_delay=0.3"  sleep before the first stream chunk (a cold instance)
    "chunk_delay=0.5"     sleep between stream chunks (a slow generation)
    "stream_fail_after=3" send 3 stream chunks, then drop the connection (litellm reads this
                          as the end of the stream: a short, successful answer)
    "stream_error_after=3"  send 3 stream chunks, then an error event (a failure mid-stream)
    "delay=0.5"           sleep before answering a non-streaming request
    "prompt_tokens=7 completion_tokens=5"  the usage it reports (defaults 12 and 8)
"""

from __future__ import annotations

import json
import re
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


def _directives(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    messages = body.get("messages") or [{}]
    text = str(messages[-1].get("content", ""))
    return text, dict(_DIRECTIVE.findall(text))


class FakeLLMServer:
    """Runs the server in a daemon thread; `base_url` is what a deployment's api_base takes."""

    def __init__(self, port: int = 0) -> None:
        self.seen: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _count(self, text: str) -> int:
        with self._lock:
            self.requests += 1
            self.seen[text] += 1
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
                body = json.loads(self.rfile.read(length) or b"{}")
                text, directives = _directives(body)
                seen = server._count(text)
                status = int(directives.get("status", 200))
                if status == 200 and seen <= int(directives.get("fail", 0)):
                    status = 503
                if status != 200:
                    self._json(status, {"error": {"message": "local model unavailable", "type": "server_error"}})
                    return
                usage = {
                    "prompt_tokens": int(directives.get("prompt_tokens", DEFAULT_PROMPT_TOKENS)),
                    "completion_tokens": int(directives.get("completion_tokens", DEFAULT_COMPLETION_TOKENS)),
                }
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                model = str(body.get("model", "local-model"))
                if body.get("stream"):
                    self._stream(model, usage, float(directives.get("first_chunk_delay", 0)),
                                 float(directives.get("chunk_delay", 0.01)),
                                 int(directives.get("stream_fail_after", -1)),
                                 int(directives.get("stream_error_after", -1)))
                else:
                    time.sleep(float(directives.get("delay", 0)))
                    self._json(200, {
                        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                        "created": int(time.time()), "model": model, "usage": usage,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "".join(REPLY_WORDS)}}],
                    })

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, model: str, usage: dict[str, int], first_chunk_delay: float,
                        chunk_delay: float, fail_after: int, error_after: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
                time.sleep(first_chunk_delay)
                for index, word in enumerate(REPLY_WORDS):
                    if index == error_after:
                        self._event({"error": {"message": "generation failed", "type": "server_error",
                                               "code": "internal_error"}})
                        self._write(b"data: [DONE]\n\n")
                        self.close_connection = True
                        return
                    if index == fail_after:
                        self.close_connection = True
                        self.connection.shutdown(2)  # abrupt: no [DONE], no usage
                        return
                    last = index == len(REPLY_WORDS) - 1
                    self._event({
                        "id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": word},
                                     "finish_reason": "stop" if last else None}],
                    })
                    time.sleep(chunk_delay)
                self._event({"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model, "choices": [], "usage": usage})
                self._write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _event(self, payload: dict[str, Any]) -> None:
                self._write(b"data: " + json.dumps(payload).encode() + b"\n\n")

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
