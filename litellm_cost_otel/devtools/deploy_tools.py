"""The real tools deploy/'s tests run, built once per machine from pinned Go modules:

- the OpenTelemetry Collector that deploy/ configures, built with the Collector Builder (OCB)
  from deploy/collector/builder.yaml, and a helper to run it;
- kustomize, to render deploy/kustomization.yaml as `kubectl apply -k deploy/` would;
- Prometheus, Debian's package (its server binary, taken out of the .deb with dpkg-deb), to
  run the dashboard's PromQL and the alerting rules against what the Collector exposes, and
  promtool from the same package, to check and unit-test deploy/alerts.yaml;
- amtool, Debian's (from its Alertmanager package), to check deploy/alertmanager.yaml and its routes;
- Redis, Debian's server, for the budget guard's tests (replicas sharing one Redis).

    python -m litellm_cost_otel.devtools.deploy_tools build   # prints the binaries' paths

Builds land in a cache directory (the Collector's keyed by its manifest's hash), so tests and
CI reuse them. They need Go and the Go module proxy (a few minutes the first time), and
apt-get for Prometheus and Redis.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "collector" / "builder.yaml"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.1"
PROMETHEUS_PACKAGE = "prometheus=2.42.0+ds-5+deb12u1"  # Debian 12's
ALERTMANAGER_PACKAGE = "prometheus-alertmanager=0.25.0-1+b4"  # Debian 12's
REDIS_PACKAGES = ("redis-tools", "libjemalloc2", "liblzf1")  # Debian 12's (7.0.x, security updates)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litellm-cost-otel"


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return manifest


def binary_path() -> Path:
    """Where the build for the current manifest lives (it may not exist yet)."""
    digest = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()[:12]
    return cache_root() / f"otelcol-{digest}" / str(_manifest()["dist"]["name"])


def _tool_path(name: str, version: str) -> Path:
    return cache_root() / "bin" / f"{name}-{version}"


def _go_install(module: str, version: str, name: str) -> Path:
    """`go install module@version` into the cache, as `name-version`."""
    binary = _tool_path(name, version)
    if not binary.exists():
        if shutil.which("go") is None:
            raise SystemExit("Building deploy/'s test tools needs Go (https://go.dev/dl/) on PATH.")
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "install", f"{module}@{version}"], check=True,
                       env={**os.environ, "GOBIN": str(binary.parent)})
        (binary.parent / name).rename(binary)
    return binary


def build_collector() -> Path:
    """Build the Collector unless this manifest's build is already cached; return its path."""
    binary = binary_path()
    if binary.exists():
        return binary
    manifest = _manifest()
    builder = _go_install(BUILDER_MODULE, f"v{manifest['dist']['version']}", "builder")
    # Build in a scratch directory, then move the binary into place: an interrupted build
    # never leaves a half-written binary at the cached path.
    with tempfile.TemporaryDirectory(prefix="otelcol-build-") as scratch:
        manifest["dist"]["output_path"] = scratch
        scratch_manifest = Path(scratch) / "builder.yaml"
        scratch_manifest.write_text(yaml.safe_dump(manifest))
        subprocess.run([str(builder), "--config", str(scratch_manifest)], check=True)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(scratch) / manifest["dist"]["name"]), binary)
    return binary


def prometheus_path() -> Path:
    return _tool_path("prometheus", PROMETHEUS_PACKAGE.split("=", 1)[1])


def _from_debian(packages: list[str], files: dict[str, Path]) -> None:
    """Download Debian packages (no install, no root needed) and take `files` (paths inside
    them) out into the cache."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SystemExit(f"Fetching {', '.join(packages)} needs apt-get and dpkg-deb (Debian's packages).")
    with tempfile.TemporaryDirectory(prefix="debs-") as scratch:
        download = ["apt-get", "download", "-q", *packages]
        if subprocess.run(download, cwd=scratch).returncode != 0:  # stale package lists: refresh once
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(download, cwd=scratch, check=True)
        for deb in Path(scratch).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(scratch) / "root")], check=True)
        for inside, target in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(scratch) / "root" / inside), target)


def promtool_path() -> Path:
    return _tool_path("promtool", PROMETHEUS_PACKAGE.split("=", 1)[1])


def fetch_prometheus() -> Path:
    """Debian's Prometheus server binary and its promtool, into the cache (static Go binaries:
    the package's other dependencies are its web UI's scripts, which the HTTP API does not need)."""
    binary, promtool = prometheus_path(), promtool_path()
    if not (binary.exists() and promtool.exists()):
        _from_debian([PROMETHEUS_PACKAGE], {"usr/bin/prometheus": binary, "usr/bin/promtool": promtool})
    return binary


def fetch_promtool() -> Path:
    fetch_prometheus()
    return promtool_path()


def amtool_path() -> Path:
    return _tool_path("amtool", ALERTMANAGER_PACKAGE.split("=", 1)[1])


def fetch_amtool() -> Path:
    """Debian's amtool (a static Go binary), into the cache. (Not its Alertmanager server:
    Debian's build reads its notification templates from a fixed /usr/share path, so it runs
    only where the package is installed.)"""
    binary = amtool_path()
    if not binary.exists():
        _from_debian([ALERTMANAGER_PACKAGE], {"usr/bin/amtool": binary})
    return binary


def redis_dir() -> Path:
    return cache_root() / "redis-debian12"


def fetch_redis() -> Path:
    """Debian's Redis server (its redis-server package runs the redis-check-rdb binary of
    redis-tools under the name redis-server) with the two libraries it links beyond glibc and
    OpenSSL, into the cache; run it with LD_LIBRARY_PATH set to its directory."""
    directory = redis_dir()
    binary = directory / "redis-server"
    if not binary.exists():
        _from_debian(list(REDIS_PACKAGES), {
            "usr/bin/redis-check-rdb": directory / "redis-check-rdb",
            "usr/lib/x86_64-linux-gnu/libjemalloc.so.2": directory / "libjemalloc.so.2",
            "usr/lib/x86_64-linux-gnu/liblzf.so.1.5": directory / "liblzf.so.1"})
        binary.symlink_to("redis-check-rdb")  # the name selects the server mode
    return binary


def required(binary: Path) -> Path:
    """A built tool, or a clear failure (never a skip) telling how to build it."""
    if not binary.exists():
        raise RuntimeError(f"No build at {binary}: run `make deploy-tools` (the test command does this).")
    return binary


def required_binary() -> Path:
    return required(binary_path())


def kustomize_build(directory: Path) -> str:
    """The manifests `kubectl apply -k directory` would apply."""
    return subprocess.run([str(required(_tool_path("kustomize", KUSTOMIZE_VERSION))), "build", str(directory)],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's promtool from the same package as the server, e.g. `check rules FILE` or
    `test rules FILE`; a clear failure when `make deploy-tools` has not fetched it."""
    return subprocess.run([str(required(promtool_path())), *args], capture_output=True, text=True, timeout=120)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's amtool, e.g. `check-config FILE` or `config routes test --config.file=FILE LABEL=VALUE...`."""
    return subprocess.run([str(required(amtool_path())), *args], capture_output=True, text=True, timeout=60)


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    """`otelcol validate`: the real binary parses the config and builds every component."""
    return subprocess.run([str(required_binary()), "validate", f"--config={config}"],
                          capture_output=True, text=True, timeout=60)


class _Server:
    """One tool's process, started and waited for until `ready_url` answers 200."""

    name = "server"

    def __init__(self, command: list[str], env: dict[str, str], ready_url: str, log: Path) -> None:
        self.command, self.env, self.ready_url, self.log_path = command, env, ready_url, log
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Any:
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(self.command, env={**os.environ, **self.env}, stdout=self._log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()  # never leave a process behind that the caller cannot stop
        raise RuntimeError(f"{self.name} not ready in {timeout_s}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Collector(_Server):
    """One Collector process on a config, waiting until its health-check extension answers."""

    name = "Collector"

    def __init__(self, config: Path, env: dict[str, str], health_port: int, log: Path) -> None:
        super().__init__([str(required_binary()), f"--config={config}"], env, f"http://127.0.0.1:{health_port}/",
                         log)


class Prometheus(_Server):
    """A Prometheus server scraping `targets` (host:port) every second, evaluating `rule_files`
    every second, and its query API."""

    name = "Prometheus"

    def __init__(self, targets: list[str], workdir: Path, port: int, rule_files: list[Path] | None = None) -> None:
        config = workdir / "prometheus.yaml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                          "rule_files": [str(path) for path in rule_files or []],
                                          "scrape_configs": [{"job_name": "otel-collector",
                                                              "static_configs": [{"targets": targets}]}]}))
        self.url = f"http://127.0.0.1:{port}"
        super().__init__([str(required(prometheus_path())), f"--config.file={config}",
                          f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                         {}, f"{self.url}/-/ready", workdir / "prometheus.log")

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>: its `data`, or an error naming Prometheus's message."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            answer = json.loads(response.read())
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {answer}")
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (or matrix, for a range selector)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        return list(self.api("query", **params)["result"])


if __name__ == "__main__":
    if sys.argv[1:] != ["build"]:
        raise SystemExit("usage: python -m litellm_cost_otel.devtools.deploy_tools build")
    print(build_collector())
    print(_go_install(KUSTOMIZE_MODULE, KUSTOMIZE_VERSION, "kustomize"))
    print(fetch_prometheus())
    print(fetch_promtool())
    print(fetch_amtool())
    print(fetch_redis())


class RedisServer:
    """A real redis-server on 127.0.0.1 (no persistence), stoppable and restartable on the
    same port, for the tests that take the store away mid-run."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> RedisServer:
        binary = required(redis_dir() / "redis-server")
        log = (self.workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            env={**os.environ, "LD_LIBRARY_PATH": str(binary.parent)}, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{(self.workdir / 'redis.log').read_text()[-4000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server not ready in {timeout_s}s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=15)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
