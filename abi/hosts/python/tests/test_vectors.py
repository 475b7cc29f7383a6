"""policy_core.wasm from Python decides every project vector as expected, and bad input raises
Python errors, never traps. Run by ``cargo xtask test`` (module path in EDGE_ACCESS_ABI_WASM)."""

import glob
import json
import os
import random
import unittest

import edge_access

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "policy-core", "tests", "vectors")


class Vectors(unittest.TestCase):
    def test_every_vector(self):
        module = edge_access.PolicyModule()
        cases = 0
        files = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
        self.assertGreaterEqual(len(files), 40)
        for path in files:
            name = os.path.basename(path)
            with open(path, encoding="utf-8") as f:
                test = json.load(f)
            document = json.dumps(test["document"])
            if "expect_load_errors" in test:
                with self.assertRaises(edge_access.LoadError, msg=name) as raised:
                    module.compile(document)
                for expected in test["expect_load_errors"]:
                    self.assertTrue(any(e["path"] == expected["path"] and expected["contains"] in e["message"]
                                        for e in raised.exception.errors), f"{name}: {expected}")
                cases += 1
                continue
            engine = module.compile(document)
            for case in test["cases"]:
                label = f"{name} / {case['name']}"
                if "expect_request_error" in case:
                    with self.assertRaises(edge_access.RequestError, msg=label) as raised:
                        engine.decide(case["request"])
                    expected = case["expect_request_error"]
                    self.assertTrue(any(e["path"] == expected["path"] and expected["contains"] in e["message"]
                                        for e in raised.exception.errors), label)
                    cases += 1
                    continue
                verdict = engine.explain(case["request"])
                fast = engine.decide(case["request"])
                expect = case["expect"]
                self.assertEqual(verdict["outcome"], expect["outcome"], label)
                self.assertEqual(fast["outcome"], expect["outcome"], label)
                if "policy" in expect:
                    policy = verdict["policy"]
                    got = None if policy is None else (policy["id"] if policy["id"] is not None else policy["name"])
                    self.assertEqual(got, expect["policy"], label)
                if "session_duration" in expect:
                    self.assertEqual(verdict["session_duration"], expect["session_duration"], label)
                for needle in expect.get("trace_contains", []):
                    self.assertTrue(any(needle in line for line in verdict["trace"]), f"{label}: {needle}")
                cases += 1
            self.assertTrue(engine.free())
        self.assertGreaterEqual(cases, 400)

    def test_bad_input_raises_python_errors(self):
        module = edge_access.PolicyModule()
        rng = random.Random(7)
        for _ in range(300):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
            with self.assertRaises(edge_access.LoadError):
                module.compile(blob)
        with self.assertRaises(edge_access.LoadError) as raised:
            module.compile('{"team_domain": "https://a.example.com", "apps": [{"id": 1}]}')
        self.assertEqual(raised.exception.errors[0]["line"], 1)
        self.assertIn("kind", raised.exception.errors[0])

    def test_objects_in_and_out(self):
        module = edge_access.PolicyModule()
        engine = module.compile({
            "team_domain": "https://access.example.com",
            "identity_providers": [{"id": "entra", "name": "Entra", "type": "azureAD",
                                    "config": {"client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}}],
            "apps": [{"id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
                      "policies": [{"name": "Staff", "decision": "allow",
                                    "include": [{"email_domain": {"domain": "example.com"}}]}]}]})
        verdict = engine.decide({"app": "wiki.example.com/", "identity": {"email": "ada@example.com"}})
        self.assertEqual(verdict["outcome"], "allow")
        with self.assertRaises(edge_access.RequestError):
            engine.decide({"app": "wiki.example.com/", "ip": "999.1.1.1"})


if __name__ == "__main__":
    unittest.main()
