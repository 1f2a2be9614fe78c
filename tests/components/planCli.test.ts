import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { MAX_ARGS_FILE_BYTES, parseArgsText } from "../../components/argsFile";
import { runPlanCli } from "../../components/planCli";
import { buildDispatcherBundle } from "../../dispatcher/bundle";
import { planKataDeploy } from "../../index";
import { planChartObjects } from "../../components/plan";
import { tempDir } from "../tempDir";

const ROOT = path.resolve(__dirname, "../..");

async function run(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runPlanCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe("components: plan (npm run plan -- --args FILE)", () => {
  let dir: string;
  before(() => {
    dir = tempDir("kata-plan-");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it("without --args: the defaults, the chart 4.0.0 reference and empty values", async () => {
    const { code, stdout, stderr } = await run([]);
    assert.equal(code, 0);
    assert.equal(stderr, "");
    const plan = parse(stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(plan.chart, {
      reference: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy",
      version: "4.0.0",
    });
    assert.deepEqual(plan.values, {});
    assert.equal(plan.args.deploymentMode, "daemonset");
    assert.equal(plan.args.namespace, "kube-system");
    assert.equal(plan.args.releaseName, "kata-deploy");
    assert.equal(plan.args.priorityClassName, "system-node-critical");
    assert.equal(plan.nodeSelection, undefined);
    assert.equal(plan.rollout, undefined, "daemonset mode: the rollout only waits for the DaemonSet");
  });

  it("a YAML args file: validated args with defaults, exact chart values, the dispatchers' node selection", async () => {
    const file = write(
      "job.yaml",
      [
        "deploymentMode: job",
        "namespace: kata",
        "job:",
        "  parallelism: 10",
        "  nodeSelector: {pool: kata}",
        "values:",
        "  job: {backoffLimit: 1}",
        "",
      ].join("\n"),
    );
    const { code, stdout, stderr } = await run(["--args", file, "--name", "kata"]);
    assert.equal(code, 0, stderr);
    const plan = parse(stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(plan.values, {
      job: { backoffLimit: 1, parallelism: 10, nodeSelector: { pool: "kata" } },
      deploymentMode: "job",
    });
    const job = plan.args.job as Record<string, unknown>;
    assert.equal(job.parallelism, 10);
    assert.equal(job.backoffLimit, 1);
    assert.equal(job.ttlSecondsAfterFinished, 600); // chart default shown
    assert.equal(plan.args.releaseName, "kata");
    // The chart's compilation: equalities first, then the default role expressions.
    assert.deepEqual(plan.nodeSelection, {
      install: [
        "--node-selector=pool=kata,!node-role.kubernetes.io/control-plane,!node-role.kubernetes.io/master",
      ],
      cleanup: ["--node-selector=katacontainers.io/kata-runtime"],
    });
    // Same plan as the library function, plus the chart's objects and the rollout's objects in job mode.
    const { rollout, chartObjects, ...planOnly } = plan as Record<string, unknown>;
    const library = planKataDeploy(parse(fs.readFileSync(file, "utf8")), "kata");
    const { warnings, ...expected } = library;
    assert.deepEqual(warnings, []);
    assert.deepEqual(planOnly, JSON.parse(JSON.stringify(expected)));
    assert.deepEqual(chartObjects, JSON.parse(JSON.stringify(planChartObjects(library))));
    assert.equal(plan.args.dispatcherImplementation, "bundled");
    assert.deepEqual(plan.args.rollout, {
      timeoutSeconds: 3600,
      healDrift: true,
      cleanupOnDestroy: true,
      stuckGraceSeconds: 300,
    });
    // The bundled dispatcher by default: the script ConfigMap summarized, the Jobs mounting it.
    const r = rollout as {
      dispatcherImplementation: string;
      note: string;
      scriptConfigMap: {
        metadata: { name: string; namespace: string };
        data: Record<string, { bytes: number; sha256: string }>;
      };
      podReaderRole: { rules: { resources: string[]; verbs: string[] }[] };
      podReaderRoleBinding: { subjects: { name: string }[] };
      installDispatcherJob: {
        metadata: { name: string; namespace: string };
        spec: {
          template: {
            spec: {
              volumes: { configMap?: { name: string } }[];
              containers: { image: string; command: string[] }[];
            };
          };
        };
      };
      cleanupDispatcherJob: { metadata: { name: string } };
    };
    assert.equal(r.dispatcherImplementation, "bundled");
    assert.match(r.note, /summarized/);
    assert.deepEqual(r.scriptConfigMap.metadata.namespace, "kata");
    const bundle = await buildDispatcherBundle();
    for (const [key, text] of Object.entries(bundle.files)) {
      assert.deepEqual(r.scriptConfigMap.data[key], {
        bytes: Buffer.byteLength(text),
        sha256: createHash("sha256").update(text).digest("hex"),
      });
    }
    // The script text stays out of the plan (the chart's objects, printed whole, make it long otherwise).
    for (const text of Object.values(bundle.files)) {
      const line = (text.split("\n").find((l) => l.trim().length > 40) ?? text).trim().slice(0, 80);
      assert.equal(stdout.includes(line), false, `the script text stays out of the plan (${line})`);
    }
    assert.equal(r.installDispatcherJob.metadata.name, "kata-deploy-install-dispatcher");
    assert.equal(r.installDispatcherJob.metadata.namespace, "kata");
    assert.equal(r.cleanupDispatcherJob.metadata.name, "kata-deploy-cleanup-dispatcher");
    const pod = r.installDispatcherJob.spec.template.spec;
    assert.ok(pod.volumes.some((v) => v.configMap?.name === r.scriptConfigMap.metadata.name));
    assert.equal(pod.containers[0].command[0], "node");
    assert.deepEqual(
      r.podReaderRole.rules.map((x) => [x.resources, x.verbs]),
      [
        [["pods"], ["get", "list"]],
        [["jobs"], ["get", "list", "watch"]],
      ],
    );
    assert.equal(r.podReaderRoleBinding.subjects[0].name, "kata-deploy-dispatcher-sa");
  });

  it("a JSON args file works the same, and warnings are part of the plan", async () => {
    const file = write("warn.json", JSON.stringify({ job: { parallelism: 3 } }));
    const { code, stdout } = await run(["--args", file]);
    assert.equal(code, 0);
    const plan = parse(stdout) as { warnings: { path: string; message: string }[] };
    assert.deepEqual(
      plan.warnings.map((w) => w.path),
      ["job.parallelism"],
    );
  });

  it("invalid args: every error with path and fix on stderr, exit 2, nothing on stdout", async () => {
    const file = write("bad.yaml", "deploymentMode: Job\njob:\n  parallelism: 0\n  nodes: [Bad_Node]\n");
    const { code, stdout, stderr } = await run(["--args", file]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^error: deploymentMode: "Job" is not valid; use one of "daemonset", "job"/);
    assert.match(lines[1], /^error: job\.parallelism: must be ≥ 1/);
    assert.match(lines[2], /^error: job\.nodes\[0\]: node name "Bad_Node" is not a DNS-1123 subdomain/);
  });

  it("unreadable or unparsable files and unknown options: exit 2 with the reason", async () => {
    const missing = await run(["--args", path.join(dir, "nope.yaml")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /error: --args .*nope\.yaml: cannot read it \(ENOENT\)/);
    const broken = await run(["--args", write("broken.yaml", "job: [unclosed\n")]);
    assert.equal(broken.code, 2);
    assert.equal(broken.stdout, "");
    assert.equal((await run(["--bogus"])).code, 2);
  });

  it("bounds the args file: a 5 MiB map is refused before parsing, naming the limit; /dev/zero too", async () => {
    const big = write("big.yaml", Array.from({ length: 250_000 }, (_, i) => `key${i}: value${i}`).join("\n"));
    assert.ok(fs.statSync(big).size > 5 * 1024 * 1024);
    const refused = await run(["--args", big]);
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout, "");
    assert.match(refused.stderr, /big\.yaml: larger than 1 MiB, the limit for an args file/);
    const endless = await run(["--args", "/dev/zero"]);
    assert.equal(endless.code, 2);
    assert.match(endless.stderr, /larger than 1 MiB/);
  });

  it("parses a map just under the limit in linear time (the yaml default is quadratic: about a minute here)", () => {
    // 50,000 keys, ~1 MiB: the quadratic duplicate check would outlast this test's timeout many times over.
    const text = Array.from({ length: 50_000 }, (_, i) => `k${i}: v${i}`).join("\n");
    assert.ok(Buffer.byteLength(text) < MAX_ARGS_FILE_BYTES);
    const parsed = parseArgsText(text) as Record<string, string>;
    assert.equal(Object.keys(parsed).length, 50_000);
    assert.equal(parsed.k49999, "v49999");
  });

  it("refuses duplicate keys at any depth, naming the key and its line", async () => {
    const dup = await run(["--args", write("dup.yaml", "job:\n  parallelism: 2\n  parallelism: 3\n")]);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /duplicate key "parallelism" at line 3: give each key once/);
  });

  it("npm run plan: the real script, exit code and streams", function () {
    this.timeout(300_000);
    const file = write("bad2.yaml", "job:\n  nodeSelectorExpressions:\n    - {key: zone, operator: In}\n");
    const bad = spawnSync("npm", ["run", "-s", "plan", "--", "--args", file], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(bad.status, 2, bad.stderr);
    assert.equal(bad.stdout, "");
    assert.match(
      bad.stderr,
      /error: job\.nodeSelectorExpressions\[0\]\.values: operator In needs at least one value/,
    );
  });
});
