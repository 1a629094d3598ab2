"""The main job, offline: the real proxy with the plugin, a mix of traffic, and a per-request
table read back from the spans the plugin exported over OTLP/gRPC.

    python -m litellm_cost_otel.devtools.demo
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import attributes as a
from .. import metrics
from .fake_llm import FakeLLMServer
from .otlp_receiver import OtlpReceiver
from .proxy import LiteLLMProxy
from .traces import RequestTrace, request_traces

CONFIG = Path(__file__).with_name("offline_config.yaml")

# (what it shows, group, message, stream)
TRAFFIC = [
    ("success", "fast", "What is the capital of France?", False),
    ("success", "capable", "Explain retries in one line.", False),
    ("stream", "fast", "Stream me a word.", True),
    ("success", "local", "prompt_tokens=120 completion_tokens=40 Summarise this ticket.", False),
    ("cold stream", "local", "first_chunk_delay=0.8 prompt_tokens=60 completion_tokens=25 Draft a reply.", True),
    ("retry", "local", "fail=1 prompt_tokens=30 completion_tokens=10 Classify this.", False),
    ("fallback", "fast-outage", "What is 6 x 7?", False),
    ("failure", "local", "status=503 The local model is down.", False),
    ("unknown model", "gpt-unknown", "Anyone there?", False),
]


def _ms(value: object) -> str:
    return f"{float(value):.0f}" if isinstance(value, (int, float)) else "-"


def table(rows: Iterable[tuple[str, RequestTrace]]) -> str:
    header = ("traffic", "asked", "served", "attempts", "fallbacks", "tokens in/out", "cost USD",
              "latency ms", "TTFT ms", "status")
    lines = [header]
    total = 0.0
    for label, trace in rows:
        request, answered = trace.request.attributes, trace.answering_attempt
        tokens = "-"
        if answered is not None and a.GEN_AI_USAGE_INPUT_TOKENS in answered.attributes:
            used = answered.attributes
            tokens = f"{used[a.GEN_AI_USAGE_INPUT_TOKENS]}/{used[a.GEN_AI_USAGE_OUTPUT_TOKENS]}"
        ttft = request.get(a.REQUEST_TIME_TO_FIRST_CHUNK)
        total += float(request[a.COST_USD])
        lines.append((
            label, str(request.get(a.MODEL_GROUP, "-")), str(request.get(a.SERVED_MODEL_GROUP, "-")),
            str(request[a.ATTEMPTS]), str(request[a.FALLBACKS]), tokens, f"{request[a.COST_USD]:.8f}",
            _ms(request.get(a.LATENCY_MS)), _ms(ttft * 1000 if ttft is not None else None),
            request.get(a.ERROR_TYPE, "ok") if trace.request.status == "ERROR" else "ok",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * width for width in widths))
    out.append(f"\ntotal spend over {len(lines) - 1} requests: ${total:.8f}")
    return "\n".join(out)


def main() -> None:
    receiver, fake_llm = OtlpReceiver().start(), FakeLLMServer().start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "litellm-proxy-demo",
           "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "LOCAL_MODEL_BASE_URL": fake_llm.base_url}
    print(f"OTLP receiver on {receiver.endpoint}; local model stand-in on {fake_llm.base_url}")
    with tempfile.TemporaryDirectory() as work:
        config = Path(work) / "offline_config.yaml"
        config.write_text(CONFIG.read_text())
        print("starting the LiteLLM proxy with the plugin (takes ~10 s) ...")
        with LiteLLMProxy(config, env, log_path=Path(work) / "proxy.log") as proxy:
            print(f"proxy on {proxy.base_url}; sending {len(TRAFFIC)} requests ...")
            with ThreadPoolExecutor(4) as pool:
                responses = list(pool.map(lambda t: proxy.chat(t[1], t[2], stream=t[3]), TRAFFIC))
        # The proxy has stopped: its batch processor flushed every span at exit.
    by_call = {trace.call_id: trace for trace in request_traces(receiver.snapshot())}
    rows = []
    for (label, *_), response in zip(TRAFFIC, responses, strict=True):
        trace = by_call.get(response.headers.get("x-litellm-call-id", ""))
        if trace is None:
            print(f"warning: no spans received for the {label!r} request")
            continue
        header_cost = response.headers.get("x-litellm-response-cost")
        if header_cost is not None and abs(float(header_cost) - trace.request.attributes[a.COST_USD]) > 1e-12:
            print(f"warning: span cost differs from x-litellm-response-cost for {label!r}")
        rows.append((label, trace))
    print()
    print(table(rows))
    spend: dict[str, float] = {}
    for point in receiver.metric_points(metrics.COST):
        group = str(point.attributes.get(a.SERVED_MODEL_GROUP, "(failed)"))
        spend[group] = spend.get(group, 0.0) + point.value
    print("\nspend by served group, from the litellm.request.cost metric: "
          + ", ".join(f"{group} ${cost:.8f}" for group, cost in sorted(spend.items())))
    print(f"\n{len(receiver.snapshot())} spans and {len(receiver.metrics)} metric streams received over OTLP/gRPC. "
          "Point OTEL_EXPORTER_OTLP_ENDPOINT at your Collector to send them there instead.")
    receiver.stop()
    fake_llm.stop()


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
