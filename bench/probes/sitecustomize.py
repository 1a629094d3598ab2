"""The benchmarks' garbage-collection probe, loaded by the proxy's interpreter at start-up
(bench.harness puts this directory on the proxy's PYTHONPATH, so Python's `site` imports it).

It counts the collector's collections per generation and the time they take (`gc.callbacks`),
and writes the totals to the JSON file named by BENCH_GC_PROBE four times a second: the proxy
dies by SIGTERM, so no exit hook would run. Every proxy of a run carries it alike.
"""

import gc
import json
import os
import threading
import time

_PATH = os.environ.get("BENCH_GC_PROBE")
if _PATH:
    _counts = [0, 0, 0]
    _seconds = [0.0, 0.0, 0.0]
    _started = [0.0]

    def _on_collection(phase: str, info: dict) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            generation = info["generation"]
            _counts[generation] += 1
            _seconds[generation] += time.perf_counter() - _started[0]

    def _write_totals(path: str) -> None:
        while True:
            partial = path + ".partial"
            with open(partial, "w") as file:
                json.dump({"collections": _counts, "seconds": _seconds}, file)
            os.replace(partial, path)
            time.sleep(0.25)

    gc.callbacks.append(_on_collection)
    threading.Thread(target=_write_totals, args=(_PATH,), daemon=True, name="bench-gc-probe").start()
