"""Runs the kafkajs suite (tests/compat/node, node's built-in test runner) as part of the pytest run.

Set SLUICE_SKIP_NODE=1 to skip (e.g. when CI runs `node --test tests/compat/node/` separately).
"""
import os
import shutil
import subprocess

import pytest

from kafka_harness import HERE, SLUICE_BIN

NODE_DIR = os.path.join(HERE, "node")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("SLUICE_SKIP_NODE") == "1", reason="SLUICE_SKIP_NODE=1")
def test_kafkajs_suite():
    if not shutil.which("node"):
        pytest.fail("node not found on PATH")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "kafkajs")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, timeout=300)
        assert r.returncode == 0, "npm ci failed:\n%s" % r.stderr.decode()[-3000:]
    env = dict(os.environ, SLUICE_BIN=SLUICE_BIN)
    files = sorted(f for f in os.listdir(NODE_DIR) if f.endswith(".test.js"))
    r = subprocess.run(["node", "--test"] + files, cwd=NODE_DIR, env=env, capture_output=True, timeout=600)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        # summarize: every failing subtest with its YAML diagnostics block
        lines, keep, summary = out.splitlines(), False, []
        for line in lines:
            if line.startswith("not ok"):
                keep = True
            elif line.startswith("ok ") or line.startswith("# Subtest"):
                keep = False
            if keep or line.startswith("# pass") or line.startswith("# fail"):
                summary.append(line)
        pytest.fail("kafkajs suite failed (rc=%d):\n%s\n%s" % (r.returncode, "\n".join(summary)[-12000:],
                                                               r.stderr.decode()[-3000:]), pytrace=False)
