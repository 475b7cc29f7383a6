"""Memory per engine and decisions per second of policy_core.wasm from Python.

usage: python measure.py DOCUMENT REQUEST   (module from EDGE_ACCESS_ABI_WASM)
"""
import sys
import time

import edge_access

document, request = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
module = edge_access.PolicyModule()
empty = module.memory_bytes
engines = [module.compile(document) for _ in range(20)]
per_engine = (module.memory_bytes - empty) // 20
rounds = 5000
started = time.perf_counter()
for _ in range(rounds):
    engines[0].decide(request)
seconds = time.perf_counter() - started
print(f"python: {per_engine // 1024} KiB per engine ({len(document)} bytes of document), "
      f"{rounds / seconds:.0f} decisions/s (JSON request in, JSON verdict out)")
