"""Runs the real `litellm` proxy as a subprocess, for the demo and the tests."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def litellm_executable() -> str:
    candidate = Path(sys.executable).with_name("litellm")
    return str(candidate) if candidate.exists() else "litellm"


class LiteLLMProxy:
    """`with LiteLLMProxy(config, env) as proxy: proxy.chat(...)`; its log is in `log_path`."""

    def __init__(self, config_path: str | Path, env: Mapping[str, str] | None = None,
                 log_path: str | Path | None = None, num_workers: int = 1, startup_timeout: float = 90.0) -> None:
        self.config_path = Path(config_path)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.master_key = "sk-" + secrets.token_hex(16)
        self.log_path = Path(log_path) if log_path else self.config_path.with_suffix(".proxy.log")
        self.num_workers = num_workers
        self.startup_timeout = startup_timeout
        self.env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no internet: never fetch the price map
            "LITELLM_MASTER_KEY": self.master_key,
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",  # a crash of the proxy process leaves its Python traceback in the log
            **(env or {}),
        }
        self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base_url, timeout=60.0,
                                   headers={"Authorization": f"Bearer {self.master_key}"})

    def start(self) -> LiteLLMProxy:
        log = open(self.log_path, "wb")
        command = [litellm_executable(), "--config", str(self.config_path), "--host", "127.0.0.1",
                   "--port", str(self.port)]
        if self.num_workers > 1:
            command += ["--num_workers", str(self.num_workers)]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.config_path.parent, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"litellm proxy exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/health/readiness", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"litellm proxy not ready after {self.startup_timeout}s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM, so the plugin's batch processor flushes at exit, as in production."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.client.close()

    def chat(self, model: str, content: str = "Say hello.", stream: bool = False,
             headers: Mapping[str, str] | None = None, **body: Any) -> httpx.Response:
        payload = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream, **body}
        return self.client.post("/v1/chat/completions", json=payload, headers=dict(headers or {}))
