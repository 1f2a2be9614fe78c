// The component's `nodeOutcomes` output and its readers: the format written out by hand, the TypeScript helpers the
// package exports, and the README's Python reader run by the machine's real python3 on the same JSON.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { NodeResult } from "../../kube/jobStatus";
import { listNodeOutcomes, nodeOutcome } from "../../components";
import { encodeOutcomes } from "../../rollout/outcomes";
import { requireBinary } from "../realBinaries";

const ROOT = path.resolve(__dirname, "../..");
const BROKEN = "container host-check exited 1: no usable virtualization backend [BackoffLimitExceeded]";

const RESULTS: NodeResult[] = [
  { node: "w0.rack0.dc1.example.com", outcome: "succeeded", attempts: 1, job: "kata-deploy-install-w0" },
  { node: "worker-17", outcome: "failed", attempts: 3, reason: "BackoffLimitExceeded", message: BROKEN },
  { node: "worker-18", outcome: "failed", attempts: 3, reason: "BackoffLimitExceeded", message: BROKEN },
  { node: "gpu-1", outcome: "skipped", attempts: 0, reason: "Tainted", message: "taint dedicated=gpu" },
  // A valid DNS subdomain that is also an Object.prototype key.
  { node: "constructor", outcome: "unknown", attempts: 0, reason: "JobDeleted" },
];

describe("components: nodeOutcomes, the per-node output, and its readers", () => {
  const outcomes = encodeOutcomes(RESULTS);

  it("is a map by node name (outcome, reason, message index) and a table storing each message once", () => {
    assert.deepEqual(JSON.parse(JSON.stringify(outcomes)), {
      nodes: {
        "w0.rack0.dc1.example.com": { outcome: "succeeded" },
        "worker-17": { outcome: "failed", reason: "BackoffLimitExceeded", message: 0 },
        "worker-18": { outcome: "failed", reason: "BackoffLimitExceeded", message: 0 },
        "gpu-1": { outcome: "skipped", reason: "Tainted", message: 1 },
        constructor: { outcome: "unknown", reason: "JobDeleted" },
      },
      messages: [BROKEN, "taint dedicated=gpu"],
    });
  });

  it("nodeOutcome reads any node back (outcome, reason, message); a node the run did not select is undefined", () => {
    for (const r of RESULTS) {
      const expected: Record<string, unknown> = { node: r.node, outcome: r.outcome };
      if (r.reason) expected.reason = r.reason;
      if (r.message) expected.message = r.message;
      assert.deepEqual(nodeOutcome(outcomes, r.node), expected, r.node);
    }
    assert.equal(nodeOutcome(outcomes, "not-in-the-run"), undefined);
    assert.equal(nodeOutcome(outcomes, "toString"), undefined, "no prototype key is a node");
    assert.deepEqual(
      listNodeOutcomes(outcomes).map((o) => o.node),
      RESULTS.map((r) => r.node),
    );
  });

  it("a message index out of the table is an error naming the node", () => {
    const broken = { nodes: { "worker-9": { outcome: "failed", message: 4 } }, messages: ["one"] };
    assert.throws(() => nodeOutcome(broken, "worker-9"), /worker-9 refers to message 4, but there are 1/);
  });

  describe("the README's Python reader (python3)", () => {
    let python: string;
    before(async function () {
      python = await requireBinary(this, "python3", async () => {
        execFileSync("python3", ["--version"], { stdio: "ignore", timeout: 30_000 });
        return "python3";
      });
    });

    it("answers what nodeOutcome answers for every node, on the JSON a StackReference returns", () => {
      const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
      const block = [...readme.matchAll(/```python\n([\s\S]*?)```/g)]
        .map((m) => m[1])
        .find((code) => code.includes("def node_outcome("));
      assert.ok(block, "README.md has a python block defining node_outcome");
      // The function alone (the rest of the block needs the Pulumi SDK), driven on stdin's JSON.
      const fn = block.slice(block.indexOf("def node_outcome("), block.indexOf("\ninfra = "));
      const driver = [
        "import json, sys",
        fn,
        "data = json.load(sys.stdin)",
        "print(json.dumps({n: node_outcome(data['outcomes'], n) for n in data['ask']}))",
      ].join("\n");
      // Numbers arrive as floats in a Python StackReference output: the reader must cope.
      const wire = JSON.parse(
        JSON.stringify(outcomes).replace(/"message":(\d+)/g, '"message":$1.0'),
      ) as unknown;
      const ask = [...RESULTS.map((r) => r.node), "not-in-the-run"];
      const out = execFileSync(python, ["-c", driver], {
        input: JSON.stringify({ outcomes: wire, ask }),
        encoding: "utf8",
        timeout: 60_000,
      });
      const answered = JSON.parse(out) as Record<string, unknown>;
      for (const node of ask) assert.deepEqual(answered[node], nodeOutcome(outcomes, node) ?? null, node);
    });
  });
});
