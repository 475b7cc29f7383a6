"""The edge-access policy engine for Python, through ``policy_core.wasm`` (ABI v1) and wasmtime.

    from edge_access import PolicyModule
    module = PolicyModule()                       # the bundled policy_core.wasm
    engine = module.compile(open("access.json").read())
    verdict = engine.decide({"app": "wiki.example.com/", "identity": {"email": "ada@example.com"}})
    print(verdict["outcome"])

Documents and requests are JSON text, bytes, or any value ``json.dumps`` takes. A document that
does not load raises ``LoadError`` with every problem (``path``, ``line``, ``column``,
``kind``, ``message``); a request that does not load raises ``RequestError``. Each call gets a
fresh fuel budget, so a hostile document stops with ``wasmtime.Trap`` (out of fuel) instead of
spinning the host.
"""

import json
import os

import wasmtime

ABI_VERSION = 1
_HERE = os.path.dirname(os.path.abspath(__file__))


class LoadError(ValueError):
    """The document does not load; ``errors`` lists every problem."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))


class RequestError(ValueError):
    """The request does not load, or the engine stopped (``kind``: ``request``, ``evaluation``)."""

    def __init__(self, error):
        self.kind = error.get("kind")
        self.errors = error.get("errors", [])
        super().__init__(error.get("message", "request refused"))


def _bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


class PolicyModule:
    """One instance of ``policy_core.wasm``; its engines live in its memory."""

    def __init__(self, wasm_path=None, fuel_per_call=2_000_000_000, max_memory_bytes=256 << 20):
        path = wasm_path or os.environ.get("EDGE_ACCESS_ABI_WASM") or os.path.join(_HERE, "policy_core.wasm")
        config = wasmtime.Config()
        config.consume_fuel = True
        self._engine = wasmtime.Engine(config)
        module = wasmtime.Module.from_file(self._engine, path)
        if module.imports:
            raise ValueError(f"the module has imports; ABI v{ABI_VERSION} has none")
        self._store = wasmtime.Store(self._engine)
        self._store.set_limits(memory_size=max_memory_bytes)
        self._fuel = fuel_per_call
        self._store.set_fuel(fuel_per_call)
        instance = wasmtime.Instance(self._store, module, [])
        exports = instance.exports(self._store)
        self._memory = exports["memory"]
        self._f = {name: exports[name] for name in (
            "ea_abi_version", "ea_alloc", "ea_dealloc", "ea_compile", "ea_decide", "ea_explain",
            "ea_result_ptr", "ea_result_len", "ea_result_free", "ea_engine_free")}
        version = self._f["ea_abi_version"](self._store)
        if version != ABI_VERSION:
            raise ValueError(f"ABI version {version}; this module speaks {ABI_VERSION}")

    @property
    def memory_bytes(self):
        """The instance's linear memory, in bytes."""
        return self._memory.data_len(self._store)

    def _call(self, name, *args, data=b""):
        self._store.set_fuel(self._fuel)
        ptr = self._f["ea_alloc"](self._store, len(data))
        if ptr == 0:
            raise MemoryError("the module is out of memory")
        self._memory.write(self._store, data, ptr)
        result = self._f[name](self._store, *args, ptr, len(data))
        self._f["ea_dealloc"](self._store, ptr, len(data))
        if result == 0:
            raise MemoryError("no result (out of memory)")
        out_ptr = self._f["ea_result_ptr"](self._store, result)
        out_len = self._f["ea_result_len"](self._store, result)
        raw = self._memory.read(self._store, out_ptr, out_ptr + out_len)
        self._f["ea_result_free"](self._store, result)
        return json.loads(bytes(raw))

    def compile_report(self, document):
        """The raw compile result: ``{"ok": true, "engine": h, "warnings": [...]}`` or errors."""
        return self._call("ea_compile", data=_bytes(document))

    def compile(self, document):
        """A compiled ``Engine``; raises ``LoadError`` when the document does not load."""
        report = self.compile_report(document)
        if not report["ok"]:
            raise LoadError(report["errors"])
        return Engine(self, report["engine"], report["warnings"])


class Engine:
    """A compiled document inside a ``PolicyModule``."""

    def __init__(self, module, handle, warnings):
        self._module = module
        self.handle = handle
        self.warnings = warnings

    def _verdict(self, name, request):
        result = self._module._call(name, self.handle, data=_bytes(request))
        if not result["ok"]:
            raise RequestError(result["error"])
        return result["verdict"]

    def decide(self, request):
        """The verdict without a trace: ``outcome``, ``app``, ``policy``, ``session_duration``."""
        return self._verdict("ea_decide", request)

    def explain(self, request):
        """The verdict with its ``trace``."""
        return self._verdict("ea_explain", request)

    def free(self):
        """Frees the engine inside the module."""
        self._module._store.set_fuel(self._module._fuel)
        return self._module._f["ea_engine_free"](self._module._store, self.handle) == 1
