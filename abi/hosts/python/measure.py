"""Compile time, memory per engine and decisions per second of policy_core.wasm from Python,
on the workload of ``cargo xtask bench`` (which runs this and never asserts timings). Prints one
JSON object, like ``abi/hosts/wasmtime/examples/measure.rs``.

usage: python measure.py DOCUMENT REQUEST   (module from EDGE_ACCESS_ABI_WASM)
"""
import json
import statistics
import sys
import time

import edge_access

ENGINES = 10
ROUNDS = 2000
SAMPLES = 5

with open(sys.argv[1], encoding="utf-8") as f:
    document = f.read()
with open(sys.argv[2], encoding="utf-8") as f:
    request = f.read()

started = time.perf_counter()
module = edge_access.PolicyModule()
load = time.perf_counter() - started
empty = module.memory_bytes
engines, compile_times = [], []
for _ in range(ENGINES):
    started = time.perf_counter()
    engines.append(module.compile(document))
    compile_times.append(time.perf_counter() - started)
per_engine = (module.memory_bytes - empty) // ENGINES
engine = engines[0]
if engine.decide(request)["outcome"] != "allow":
    raise SystemExit("the workload must be allowed")
for _ in range(ROUNDS // 10):
    engine.decide(request)
samples = []
for _ in range(SAMPLES):
    started = time.perf_counter()
    for _ in range(ROUNDS):
        engine.decide(request)
    samples.append((time.perf_counter() - started) / ROUNDS)
decide = statistics.median(samples)
print(json.dumps({
    "host": "Python + wasmtime (PyPI), `policy_core.wasm` (ABI v1, verdict as a dict)",
    "load_ms": load * 1e3,
    "compile_ms": statistics.median(compile_times) * 1e3,
    "memory_per_engine_bytes": per_engine,
    "decide_us": decide * 1e6,
    "decisions_per_s": 1 / decide,
}))
