"""OTLP/gRPC receivers in a process of their own, for `bench.run`: one per configuration,
each counting the spans it receives.

A separate process keeps the receivers' decoding work off the load generator's GIL (it would
otherwise delay the client's own timing of each request); it inherits the client's CPU core.

    python -m bench.receiver NAME...
prints one JSON line {"NAME": "http://127.0.0.1:PORT", ...}, then answers each line "counts"
on its standard input with {"NAME": spans received so far, ...}; it exits at end of input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver, ReceivedSpan

from .harness import line_within


class CountingReceiver(OtlpReceiver):
    """The repo's real receiver, counting spans instead of keeping them (a long run would
    otherwise hold every span in memory)."""

    def __init__(self) -> None:
        self.span_count = 0
        super().__init__()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self.span_count += len(spans)


def serve(names: Sequence[str]) -> None:
    receivers = {name: CountingReceiver().start() for name in names}
    try:
        print(json.dumps({name: receiver.endpoint for name, receiver in receivers.items()}), flush=True)
        for line in sys.stdin:
            if line.strip() == "counts":
                print(json.dumps({name: receiver.span_count for name, receiver in receivers.items()}), flush=True)
    finally:
        for receiver in receivers.values():
            receiver.stop()


class ReceiverProcess:
    """The client side of `python -m bench.receiver`."""

    def __init__(self, names: Sequence[str], timeout_s: float = 30.0) -> None:
        self._timeout_s = timeout_s
        self._process = subprocess.Popen([sys.executable, "-m", "bench.receiver", *names],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.endpoints: dict[str, str] = self._read_json()

    def _read_json(self) -> dict[str, str]:
        line = line_within(self._process, self._timeout_s)
        if not line:
            self.stop()
            raise RuntimeError("the OTLP receiver process did not answer")
        return json.loads(line)

    def counts(self) -> dict[str, int]:
        assert self._process.stdin is not None
        self._process.stdin.write("counts\n")
        self._process.stdin.flush()
        return {name: int(count) for name, count in self._read_json().items()}

    def stop(self) -> None:
        if self._process.poll() is None:
            try:
                if self._process.stdin is not None:
                    self._process.stdin.close()  # end of input: it stops its servers and exits
                self._process.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    serve(sys.argv[1:])
