import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { buildCommand, main, optionsFromFlags } from "../../dispatcher/cli";
import {
  apiFailureOf,
  DEFAULT_RETRY,
  isRetryable,
  KubeRequestError,
  retryDelayMs,
  withRetry,
} from "../../dispatcher/kubeApi";
import { describeProgress, RateLimited } from "../../dispatcher/log";
import { resolveNamespace } from "../../dispatcher/run";
import { tempDir } from "../tempDir";

function parse(args: string[]) {
  return optionsFromFlags(buildCommand().exitOverride().parse(args, { from: "user" }).opts());
}

describe("dispatcher CLI", () => {
  it("accepts chart 4.0.0's flags in --flag=value form, repeatable selectors and comma lists", () => {
    const o = parse([
      "--job-template=/etc/kata-job/install-job.yaml",
      "--name-prefix=kata-deploy-install",
      "--owner-job-name=kata-deploy-install-dispatcher",
      "--parallelism=7",
      "--node-selector=feature.node.kubernetes.io/cpu-cpuid.VMX=true",
      "--node-selector=feature.node.kubernetes.io/cpu-cpuid.SVM=true,kubernetes.io/os=linux",
      "--ignore-node-taints",
      "--wait-for-nodes-secs=120",
      "--node-settle-secs=15",
      "--poll-interval-secs=5",
    ]);
    assert.equal(o.parallelism, 7);
    assert.deepEqual(o.nodeSelectors, [
      "feature.node.kubernetes.io/cpu-cpuid.VMX=true",
      "feature.node.kubernetes.io/cpu-cpuid.SVM=true,kubernetes.io/os=linux",
    ]);
    assert.equal(o.ignoreNodeTaints, true);
    assert.equal(o.waitForNodesSecs, 120);
    assert.deepEqual(parse(["--job-template", "t", "--name-prefix", "p", "--nodes", " b, a,,b "]).nodes, [
      "b",
      "a",
      "b",
    ]);
    const defaults = parse(["--job-template", "t", "--name-prefix", "p"]);
    assert.equal(defaults.parallelism, 100);
    assert.equal(defaults.nodePageSize, 500);
    assert.deepEqual(defaults.nodeSelectors, []);
    assert.equal(defaults.timeoutSecs, undefined);
  });

  it("accepts every flag chart 4.2.0 passes to k8s-job-dispatcher 0.3 (install hook and reconcile tick)", () => {
    const o = parse([
      "--job-template=/etc/kata-job/install-job.yaml",
      "--cleanup-job-template=/etc/kata-job/cleanup-job.yaml",
      "--name-prefix=kata-deploy-install",
      "--owner-job-name=kata-deploy-install-dispatcher",
      "--parallelism=100",
      "--node-selector=kubernetes.io/os=linux",
      "--wait-for-nodes-secs=120",
      "--node-settle-secs=15",
      "--tracking-label-prefix=kata-deploy-job-dispatcher",
      "--node-label-key=katacontainers.io/kata-runtime",
      "--instance-label-prefix=kata-deploy.katacontainers.io",
      "--require-node-runtime-version",
      "--require-node-machine-id",
      "--multi-install-suffix=blue",
      "--node-label=true",
      "--claim-node-pending",
      "--wait-node-ready-secs=300",
      "--require-node-handlers=kata-qemu-blue, kata-clh-blue,,kata-qemu-blue",
      "--remove-node-taints=katacontainers.io/starting, other:NoExecute",
      "--kubelet-timeout-warn-secs=600",
      "--node-label-pending-value=pending",
    ]);
    assert.equal(o.nodeLabelPendingValue, "pending");
    assert.equal(o.kubeletTimeoutWarnSecs, 600);
    assert.equal(o.cleanupJobTemplate, "/etc/kata-job/cleanup-job.yaml");
    assert.equal(o.trackingLabelPrefix, "kata-deploy-job-dispatcher");
    assert.equal(o.nodeLabelKey, "katacontainers.io/kata-runtime");
    assert.equal(o.instanceLabelPrefix, "kata-deploy.katacontainers.io");
    assert.equal(o.multiInstallSuffix, "blue");
    assert.equal(o.nodeLabel, "true");
    assert.equal(o.claimNodePending, true);
    assert.equal(o.requireNodeRuntimeVersion, true);
    assert.equal(o.requireNodeMachineId, true);
    assert.equal(o.waitNodeReadySecs, 300);
    assert.deepEqual(o.requireNodeHandlers, ["kata-qemu-blue", "kata-clh-blue"]);
    assert.deepEqual(o.removeNodeTaints, [
      { key: "katacontainers.io/starting" },
      { key: "other", effect: "NoExecute" },
    ]);
    const tick = parse([
      "--job-template=/etc/kata-job/install-job.yaml",
      "--name-prefix=kata-deploy-install",
      "--owner-job-from-pod=kata-deploy-reconcile-29000000-abcde",
      "--yield-to-live-run",
      "--skip-satisfied-nodes",
      "--wait-for-nodes-secs=0",
      "--node-label=true",
    ]);
    assert.equal(tick.ownerJobFromPod, "kata-deploy-reconcile-29000000-abcde");
    assert.equal(tick.ownerJobName, undefined);
    assert.equal(tick.yieldToLiveRun, true);
    assert.equal(tick.skipSatisfiedNodes, true);
    const cleanup = parse(["--job-template=c", "--name-prefix=kata-deploy-cleanup", "--remove-node-label"]);
    assert.equal(cleanup.removeNodeLabel, true);
    assert.equal(cleanup.nodeLabel, undefined);
  });

  it("exits 2 on usage errors and invalid input, naming the flag", async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    assert.equal(await main(["--name-prefix", "p"], io), 2);
    assert.match(out.join(""), /required option '--job-template <path>'/);
    assert.equal(await main(["--job-template", "t", "--name-prefix", "p", "--log-format", "xml"], io), 2);
    assert.equal(await main(["--job-template", "t", "--name-prefix", "p", "--frobnicate"], io), 2);
    for (const empty of ["", ",,,", " , "]) {
      out.length = 0;
      assert.equal(await main(["--job-template", "t", "--name-prefix", "p", "--nodes", empty], io), 2);
      assert.match(out.join(""), /--nodes <names>' argument .* is invalid\. no node name in/);
    }
    // One bound for job.parallelism (chart/parallelism.ts): the command line refuses 0 as the schema does.
    out.length = 0;
    assert.equal(await main(["--job-template", "t", "--name-prefix", "p", "--parallelism=0"], io), 2);
    assert.match(out.join(""), /--parallelism takes a whole number >= 1, got "0"/);
    out.length = 0;
    const dir = tempDir("cli-");
    const template = path.join(dir, "t.yaml");
    writeFileSync(
      template,
      "apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: [{name: c, image: i}]}}}\n",
    );
    const kubeconfig = path.join(dir, "kubeconfig");
    writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
    const results = path.join(dir, "results.json");
    const code = await main(
      [
        "--job-template",
        template,
        "--name-prefix",
        "p",
        "--node-selector",
        "a in (",
        "--kubeconfig",
        kubeconfig,
        "--results-file",
        results,
      ],
      io,
    );
    assert.equal(code, 2);
    assert.match(out.join(""), /--node-selector "a in \(" is not a valid label selector/);
  });

  it("resolves the namespace from the flag, POD_NAMESPACE, the ServiceAccount file, then default", () => {
    const dir = tempDir("ns-");
    const file = path.join(dir, "namespace");
    writeFileSync(file, "from-file\n");
    assert.equal(resolveNamespace(" flag ", { POD_NAMESPACE: "env" }, file), "flag");
    assert.equal(resolveNamespace("  ", { POD_NAMESPACE: "env" }, file), "env");
    assert.equal(resolveNamespace(undefined, { POD_NAMESPACE: " " }, file), "from-file");
    assert.equal(resolveNamespace(undefined, {}, path.join(dir, "missing")), "default");
  });
});

describe("dispatcher retry policy", () => {
  it("classifies Status errors, plain-text 429s and transport errors", () => {
    const status429 = apiFailureOf({
      code: 429,
      body: JSON.stringify({
        kind: "Status",
        reason: "TooManyRequests",
        message: "slow down",
        details: { retryAfterSeconds: 3 },
      }),
      headers: {},
    });
    assert.deepEqual(status429, {
      code: 429,
      reason: "TooManyRequests",
      message: "slow down",
      retryAfterSeconds: 3,
    });
    const plain = apiFailureOf({
      code: 429,
      body: "Too many requests, please try again later.\n",
      headers: { "retry-after": "2" },
    });
    assert.equal(plain.retryAfterSeconds, 2);
    assert.equal(plain.message, "Too many requests, please try again later.");
    assert.equal(isRetryable({ code: 503, message: "" }), true);
    assert.equal(isRetryable({ code: 501, message: "" }), false);
    assert.equal(isRetryable({ code: 409, message: "" }), false);
    assert.equal(isRetryable({ code: 403, message: "" }), false);
    const reset = Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNRESET" } });
    assert.equal(isRetryable(apiFailureOf(reset)), true);
    assert.equal(
      isRetryable(apiFailureOf(new Error("HTTP protocol is not allowed when skipTLSVerify is not set"))),
      false,
    );
  });

  it("honours Retry-After and backs off with bounded jitter", () => {
    assert.equal(retryDelayMs({ code: 429, message: "", retryAfterSeconds: 2 }, 1, DEFAULT_RETRY), 2000);
    for (let attempt = 1; attempt < 12; attempt++) {
      const cap = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** (attempt - 1));
      assert.equal(
        retryDelayMs({ code: 500, message: "" }, attempt, DEFAULT_RETRY, () => 0),
        cap / 2,
      );
      assert.equal(
        retryDelayMs({ code: 500, message: "" }, attempt, DEFAULT_RETRY, () => 1),
        cap,
      );
    }
  });

  it("retries until an answer, and gives up after its attempts", async () => {
    const policy = { ...DEFAULT_RETRY, attempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
    let calls = 0;
    const value = await withRetry(
      "flaky",
      async () => {
        if (++calls < 3) throw { code: 500, body: "{}", headers: {} };
        return "ok";
      },
      { policy },
    );
    assert.equal(value, "ok");
    calls = 0;
    await assert.rejects(
      withRetry(
        "always 503",
        async () => {
          calls++;
          throw { code: 503, body: "{}", headers: {} };
        },
        { policy },
      ),
      (err: Error) =>
        err instanceof KubeRequestError && /gave up after 3 attempt/.test(err.message) && calls === 3,
    );
    calls = 0;
    await assert.rejects(
      withRetry(
        "forbidden",
        async () => {
          calls++;
          throw { code: 403, body: "{}", headers: {} };
        },
        { policy },
      ),
      (err: Error) => err instanceof KubeRequestError && err.code === 403 && calls === 1,
    );
  });
});

describe("dispatcher progress line", () => {
  it("is rate-limited and says done/total, failed, in flight and queued", () => {
    let now = 0;
    const lines: string[] = [];
    const limiter = new RateLimited<string>(
      1000,
      (l) => lines.push(l),
      () => now,
    );
    limiter.offer("a");
    limiter.offer("b");
    now = 999;
    limiter.offer("c");
    now = 1000;
    limiter.offer("d");
    limiter.flush("e");
    assert.deepEqual(lines, ["a", "d", "e"]);
    assert.equal(
      describeProgress({
        total: 10,
        done: 4,
        succeeded: 2,
        failed: 1,
        skipped: 1,
        inFlight: 3,
        queued: 3,
        foreign: 0,
      }),
      "progress: 4/10 done (1 failed, 1 skipped), 3 in flight, 3 queued",
    );
  });
});

describe("dispatcher retry policy: timeouts", () => {
  it("retries a request that got no answer within its timeout", async () => {
    let calls = 0;
    const value = await withRetry(
      "slow",
      (signal) =>
        new Promise<string>((resolve, reject) => {
          if (++calls >= 2) return resolve("answered");
          signal.addEventListener("abort", () => reject(new Error("aborted")));
        }),
      { policy: { ...DEFAULT_RETRY, timeoutMs: 20, baseDelayMs: 1, maxDelayMs: 2 } },
    );
    assert.equal(value, "answered");
    assert.equal(calls, 2);
  });

  it("aborts the attempt in flight when the caller's signal aborts", async () => {
    const caller = new AbortController();
    let attemptSignal: AbortSignal | undefined;
    const pending = withRetry(
      "hanging",
      (signal) =>
        new Promise<never>((_, reject) => {
          attemptSignal = signal;
          signal.addEventListener("abort", () => reject(new Error("aborted")));
        }),
      { signal: caller.signal },
    );
    caller.abort(new Error("killed"));
    await assert.rejects(pending, /killed/);
    assert.equal(attemptSignal?.aborted, true);
  });

  it("keeps nothing per call once calls end, under a run-long signal (100,000 nodes make 200,000 calls)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const runLong = new AbortController().signal;
    const calls = 50_000;
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < calls; i++) await withRetry("cheap", async () => i, { signal: runLong });
    gc();
    const perCall = (process.memoryUsage().heapUsed - before) / calls;
    // AbortSignal.any over the run-long signal kept ~600 B per call for good, and AbortSignal.timeout ~2 KB until it fired.
    assert.ok(perCall < 100, `${perCall.toFixed(0)} bytes retained per call`);
  });
});
