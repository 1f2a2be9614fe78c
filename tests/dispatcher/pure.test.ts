import { strict as assert } from "node:assert";
import fc from "fast-check";
import {
  admitNodes,
  describeSelectors,
  noEligibleNodesError,
  type NodeLike,
} from "../../dispatcher/admission";
import { FanOut } from "../../dispatcher/fanout";
import { countResults, resultsJsonChunks, type ResultsDocument } from "../../dispatcher/results";
import {
  instantiateJob,
  parseJobTemplate,
  templateTolerations,
  TemplateError,
} from "../../dispatcher/template";
import type { NodeResult } from "../../kube/jobStatus";
import type { Taint } from "../../kube/tolerations";

const TEMPLATE = `
apiVersion: batch/v1
kind: Job
metadata:
  name: ignored
  generateName: also-ignored-
  namespace: elsewhere
  labels: { app.kubernetes.io/name: kata-deploy, kata-deploy/stage: install }
spec:
  backoffLimit: 3
  template:
    metadata:
      labels: { app.kubernetes.io/name: kata-deploy }
    spec:
      restartPolicy: Never
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: c
        image: busybox
`;

const CP = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

function node(name: string, taints: Taint[] = []): NodeLike {
  return { metadata: { name, uid: `uid-${name}` }, spec: { taints } };
}

describe("dispatcher template", () => {
  it("instantiates a per-node Job like the reference (§4.1 test_build_node_job_pins_node_and_labels) without touching the template", () => {
    const template = parseJobTemplate(TEMPLATE, "install-job.yaml");
    const before = JSON.stringify(template);
    const owner = { apiVersion: "batch/v1", kind: "Job", name: "dispatcher", uid: "abc-123" };
    const job = instantiateJob(template, {
      jobName: "kata-deploy-install-node1",
      node: "node1",
      ownerValue: "kata-deploy-install",
      namespace: "kube-system",
      owner,
    });
    assert.equal(JSON.stringify(template), before);
    assert.equal(job.metadata?.name, "kata-deploy-install-node1");
    assert.equal(job.metadata?.generateName, undefined);
    assert.equal(job.metadata?.namespace, "kube-system");
    assert.deepEqual(job.metadata?.labels, {
      "app.kubernetes.io/name": "kata-deploy",
      "kata-deploy/stage": "install",
      "kata-deploy-job-dispatcher/owner": "kata-deploy-install",
      "kata-deploy-job-dispatcher/node": "node1",
    });
    assert.deepEqual(job.metadata?.annotations, { "kata-deploy-job-dispatcher/node-name": "node1" });
    assert.deepEqual(job.metadata?.ownerReferences, [
      { ...owner, controller: false, blockOwnerDeletion: false },
    ]);
    assert.equal(
      job.spec?.template?.metadata?.labels?.["kata-deploy-job-dispatcher/owner"],
      "kata-deploy-install",
    );
    assert.equal(job.spec?.template?.metadata?.labels?.["kata-deploy-job-dispatcher/node"], undefined);
    assert.equal(job.spec?.template?.spec?.nodeName, "node1");
    assert.equal(job.spec?.backoffLimit, 3);
  });

  it("keeps template ownerReferences without an owner, and hashes awkward node names into the label", () => {
    const template = parseJobTemplate(TEMPLATE, "t");
    const job = instantiateJob(template, {
      jobName: "j",
      node: "Worker.0",
      ownerValue: "o",
      namespace: "ns",
    });
    assert.equal(job.metadata?.ownerReferences, undefined);
    assert.match(job.metadata?.labels?.["kata-deploy-job-dispatcher/node"] ?? "", /^worker-0-[0-9a-f]{24}$/);
    assert.equal(job.metadata?.annotations?.["kata-deploy-job-dispatcher/node-name"], "Worker.0");
  });

  it("reads the template's tolerations from the pod spec (§4.3)", () => {
    assert.deepEqual(templateTolerations(parseJobTemplate(TEMPLATE, "t")), [
      { key: CP.key, operator: "Exists", effect: "NoSchedule" },
    ]);
    assert.deepEqual(templateTolerations({}), []);
  });

  it("rejects unusable templates naming the file and the field", () => {
    assert.throws(
      () => parseJobTemplate("a: [", "x.yaml"),
      (e: Error) => e instanceof TemplateError && /x\.yaml: not valid YAML/.test(e.message),
    );
    assert.throws(() => parseJobTemplate("", "x.yaml"), /expected one batch\/v1 Job object/);
    assert.throws(
      () => parseJobTemplate("apiVersion: v1\nkind: Pod\nspec: {}", "x.yaml"),
      /apiVersion must be "batch\/v1".*kind must be "Job".*spec\.template\.spec is required/,
    );
    assert.throws(
      () =>
        parseJobTemplate(
          "apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: []}}}",
          "x.yaml",
        ),
      /containers must list at least one container/,
    );
  });
});

describe("dispatcher taint admission (node_filter vectors §4.4)", () => {
  it("reports a node matched by several selectors once", () => {
    const a = admitNodes(
      [node("worker-1"), node("cp-1", [CP]), node("worker-1"), node("cp-1", [CP])],
      [],
      false,
    );
    assert.deepEqual(
      a.admitted.map((n) => n.metadata?.name),
      ["worker-1"],
    );
    assert.deepEqual(
      a.skipped.map((s) => [s.node, s.described]),
      [["cp-1", "node-role.kubernetes.io/control-plane:NoSchedule"]],
    );
    assert.deepEqual(
      a.matched.map((n) => n.metadata?.name),
      ["cp-1", "worker-1"],
    );
  });

  it("admits tolerated, cordoned, pressured, PreferNoSchedule and bare nodes like a DaemonSet", () => {
    const a = admitNodes(
      [
        node("cp-1", [CP]),
        node("cordoned", [{ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }]),
        node("pressured", [{ key: "node.kubernetes.io/memory-pressure", effect: "NoSchedule" }]),
        node("spot", [{ key: "spot", effect: "PreferNoSchedule" }]),
        { metadata: { name: "bare" } },
        { metadata: {} },
      ],
      [{ key: CP.key, operator: "Exists", effect: "NoSchedule" }],
      false,
    );
    assert.deepEqual(
      a.admitted.map((n) => n.metadata?.name),
      ["bare", "cordoned", "cp-1", "pressured", "spot"],
    );
    assert.deepEqual(a.skipped, []);
  });

  it("blocks on NoExecute and on user taints, unless taints are ignored", () => {
    const nodes = [
      node("gpu", [{ key: "dedicated", value: "gpu", effect: "NoSchedule" }]),
      node("evict", [{ key: "custom", value: "v", effect: "NoExecute" }]),
    ];
    const a = admitNodes(nodes, [{ key: "dedicated", operator: "Equal", value: "kata" }], false);
    assert.deepEqual(
      a.skipped.map((s) => s.described),
      ["custom=v:NoExecute", "dedicated=gpu:NoSchedule"],
    );
    assert.match(a.skipped[1].suggestion, /key: dedicated\n {2}operator: Exists\n {2}effect: NoSchedule/);
    assert.equal(admitNodes(nodes, [], true).admitted.length, 2);
  });

  it("explains empty selections like the reference (§4.3)", () => {
    assert.equal(describeSelectors([]), "<none> (every node)");
    assert.equal(describeSelectors(["a=b", "c=d"]), "[a=b], [c=d]");
    assert.equal(noEligibleNodesError([], 0, []), undefined);
    const waited =
      noEligibleNodesError([], 120, ["feature.node.kubernetes.io/cpu-cpuid.SVM in (true)"]) ?? "";
    assert.match(waited, /after waiting 120s/);
    assert.ok(waited.includes("[feature.node.kubernetes.io/cpu-cpuid.SVM in (true)]"));
    const tainted = noEligibleNodesError(admitNodes([node("cp-0", [CP])], [], false).skipped, 0, []) ?? "";
    assert.ok(tainted.includes("node cp-0"));
    assert.ok(tainted.includes("node-role.kubernetes.io/control-plane:NoSchedule"));
    assert.ok(tainted.includes("operator: Exists"));
  });
});

function ok(node: string): NodeResult {
  return { node, outcome: "succeeded", attempts: 1 };
}

describe("dispatcher fan-out state machine", () => {
  it("clamps parallelism to [1, N] and refills a slot as soon as a node finishes", () => {
    const f = new FanOut(["a", "b", "c", "d"], 2);
    assert.equal(new FanOut(["a"], 100).parallelism, 1);
    assert.equal(new FanOut(["a", "b"], 0).parallelism, 1);
    assert.deepEqual(f.takeNext(), ["a", "b"]);
    assert.deepEqual(f.takeNext(), []);
    f.created("a", "job-a");
    f.finish("b", { node: "b", outcome: "skipped", attempts: 0, reason: "NodeGone" });
    assert.deepEqual(f.takeNext(), ["c"]);
    f.finish("a", ok("a"));
    assert.deepEqual(f.takeNext(), ["d"]);
    f.created("c", "job-c");
    f.created("d", "job-d");
    f.finish("c", ok("c"));
    f.finish("d", { node: "d", outcome: "failed", attempts: 4, reason: "BackoffLimitExceeded" });
    assert.ok(f.isFinished());
    assert.deepEqual(f.progress(), {
      total: 4,
      done: 4,
      succeeded: 2,
      failed: 1,
      skipped: 1,
      inFlight: 0,
      queued: 0,
      foreign: 0,
    });
  });

  it("counts foreign active Jobs and adopted Jobs against parallelism", () => {
    const f = new FanOut(["a", "b", "c"], 2);
    f.setForeignActive("old-x", true);
    assert.ok(f.adopt("b", "job-b"));
    assert.deepEqual(f.takeNext(), []);
    f.setForeignActive("old-x", false);
    assert.deepEqual(f.takeNext(), ["a"]);
    f.finish("b", ok("b"));
    assert.deepEqual(f.takeNext(), ["c"]);
    assert.equal(f.adopt("b", "again"), false);
  });

  it("stops dispatching on stop() and finishes once in-flight nodes are done", () => {
    const f = new FanOut(["a", "b", "c"], 1);
    assert.deepEqual(f.takeNext(), ["a"]);
    f.stop();
    f.created("a", "job-a");
    assert.equal(f.isFinished(), false);
    f.finish("a", ok("a"));
    assert.deepEqual(f.takeNext(), []);
    assert.equal(f.isFinished(), true);
    assert.deepEqual(
      f.unfinished().map(([n]) => n),
      ["b", "c"],
    );
  });

  it("never holds more than P slots nor dispatches a node twice, whatever the event order (property)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("take" as const) }),
      fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("create" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("adopt" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("foreign" as const), pick: fc.nat(3), on: fc.boolean() }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(op, { maxLength: 200 }),
        (n, p, ops) => {
          const nodes = Array.from({ length: n }, (_, i) => `n${i}`);
          const f = new FanOut(nodes, p);
          const dispatched = new Set<string>();
          const adopted = new Set<string>();
          const foreign = new Set<number>();
          for (const o of ops) {
            const inFlight = () =>
              nodes.filter((x) => ["dispatching", "active"].includes(f.state(x)?.kind ?? ""));
            if (o.kind === "take") {
              const before = inFlight().length;
              for (const x of f.takeNext()) {
                assert.ok(!dispatched.has(x), `${x} dispatched twice`);
                dispatched.add(x);
              }
              // New dispatches never push the total over P; adopted Jobs may already have done so.
              const after = inFlight().length;
              if (after > before) assert.ok(after + foreign.size <= f.parallelism);
            } else if (o.kind === "create") {
              const x = nodes[o.pick % n];
              if (f.state(x)?.kind === "dispatching") f.created(x, `job-${x}`);
            } else if (o.kind === "adopt") {
              const x = nodes[o.pick % n];
              if (!dispatched.has(x) && f.adopt(x, `job-${x}`)) adopted.add(x);
            } else if (o.kind === "foreign") {
              if (o.on) foreign.add(o.pick);
              else foreign.delete(o.pick);
              f.setForeignActive(`f${o.pick}`, o.on);
            } else {
              const busy = inFlight();
              if (busy.length > 0) f.finish(busy[o.pick % busy.length], ok(busy[o.pick % busy.length]));
            }
            const p2 = f.progress();
            assert.equal(p2.inFlight, inFlight().length);
            assert.equal(p2.done + p2.inFlight + p2.queued, n);
          }
          // Drain: everything eventually finishes exactly once.
          foreign.clear();
          for (let i = 0; i < 4; i++) f.setForeignActive(`f${i}`, false);
          for (let guard = 0; guard < 3 * n && !f.isFinished(); guard++) {
            for (const x of f.takeNext()) dispatched.add(x);
            for (const [x] of f.unfinished().filter(([, s]) => s.kind !== "queued")) f.finish(x, ok(x));
          }
          assert.ok(f.isFinished());
          assert.equal(f.results().length, n);
          for (const x of nodes) assert.ok(dispatched.has(x) || adopted.has(x));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("dispatcher results file", () => {
  const header = {
    runId: "run-1",
    owner: "kata-deploy-install",
    namespace: "kube-system",
    startedAt: "2026-11-25T10:00:00.000Z",
    finishedAt: "2026-11-25T10:05:00.000Z",
    exitCode: 1 as const,
    error: 'a "quoted"\nmessage',
    dryRun: false,
    timedOut: false,
    interrupted: false,
  };
  const node = (i: number): NodeResult => ({
    node: `node-${i}`,
    outcome: i % 2 ? "failed" : "succeeded",
    job: `kata-deploy-install-node-${i}`,
    attempts: 1,
    ...(i % 2 ? { reason: "BackoffLimitExceeded", message: "container c exited 1: no\nspace [x]" } : {}),
  });

  for (const size of [0, 1, 3]) {
    it(`is the whole document, one node per line (${size} nodes)`, () => {
      const nodes = Array.from({ length: size }, (_, i) => node(i));
      const doc: ResultsDocument = { ...header, nodes, counts: countResults(nodes) };
      const text = [...resultsJsonChunks(doc)].join("");
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(doc)));
      const nodeLines = text.split("\n").filter((l) => l.trimStart().startsWith('{"node"'));
      assert.equal(nodeLines.length, size);
      assert.ok(text.endsWith("}\n"));
    });
  }

  it("counts targeted nodes as all but the skipped", () => {
    const nodes: NodeResult[] = [
      { node: "a", outcome: "succeeded", attempts: 1 },
      { node: "b", outcome: "failed", attempts: 2 },
      { node: "c", outcome: "skipped", attempts: 0 },
    ];
    assert.deepEqual(countResults(nodes), {
      total: 3,
      targeted: 2,
      succeeded: 1,
      failed: 1,
      skipped: 1,
      unknown: 0,
    });
  });
});
