"""The Python example of policy-core/README.md ("Embedding") runs here: the README's block is the
region between ``# README: begin python`` and ``# README: end`` (abi/tests/readme.rs checks that
they match). Run by ``cargo xtask test`` (module path in EDGE_ACCESS_ABI_WASM)."""

import contextlib
import io
import os
import unittest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")


class Readme(unittest.TestCase):
    def test_example(self):
        config = os.path.join(ROOT, "examples", "config.json")
        request_path = os.path.join(ROOT, "examples", "request.json")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            # README: begin python
            import json
            from edge_access import LoadError, PolicyModule

            module = PolicyModule()  # policy_core.wasm: the argument, or EDGE_ACCESS_ABI_WASM
            try:
                with open(config, encoding="utf-8") as f:
                    engine = module.compile(f.read())  # JSON text, bytes, or a dict
            except LoadError as e:
                for p in e.errors:
                    print(f"{p['line']}:{p['column']}: {p['path']}: {p['message']}")
                raise
            with open(request_path, encoding="utf-8") as f:
                request = json.load(f)
            verdict = engine.decide(request)  # RequestError when the request does not load
            print(verdict["outcome"], verdict["policy"]["id"])  # allow engineers
            print(engine.explain(request)["trace"][-1])  # why, for a person
            engine.free()
            # README: end
        self.assertEqual(printed.getvalue().splitlines()[0], "allow engineers")


if __name__ == "__main__":
    unittest.main()
