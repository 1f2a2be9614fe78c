// Fleets (generated and from files), the standalone CLI, and a 100,000-node fleet listed in pages.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { dns1123SubdomainErrors, labelValueErrors } from "../../kube/validation";
import { FleetFileError, parseFleetFile, startSimulator } from "../../sim";
import { clientsFor, startWithClients } from "./helpers";
import { tempDir } from "../tempDir";

describe("kube-sim fleets", function () {
  this.timeout(300_000);

  it("generates a deterministic fleet with roles, taints, architectures, runtimes, machine IDs and awkward names", async () => {
    const options = { nodes: 400, seed: 42, controlPlane: 3, tainted: 7, failRate: 0.05 };
    const a = await startWithClients(options);
    const b = await startSimulator(options);
    try {
      const nodes = (await a.core.listNode()).items;
      assert.equal(nodes.length, 400);
      const strip = (n: {
        metadata: { name?: string; labels?: unknown };
        spec?: unknown;
        status?: { nodeInfo?: unknown };
      }) => JSON.stringify([n.metadata.name, n.metadata.labels, n.spec, n.status?.nodeInfo]);
      assert.deepEqual(a.sim.list("nodes").map(strip), b.list("nodes").map(strip), "same seed, same fleet");
      const names = nodes.map((n) => n.metadata!.name!);
      for (const name of names) assert.deepEqual(dns1123SubdomainErrors(name), [], name);
      assert.ok(
        names.some((n) => n.length > 63 && n.length <= 253),
        "long names",
      );
      assert.ok(
        names.some((n) => n.includes(".")),
        "dotted names",
      );
      assert.ok(
        names.some((n) => names.includes(n.replace(/\./g, "-")) && n.includes(".")),
        "names differing by . and -",
      );
      const cps = nodes.filter((n) => n.metadata?.labels?.["node-role.kubernetes.io/control-plane"] === "");
      assert.equal(cps.length, 3);
      for (const cp of cps)
        assert.deepEqual(
          cp.spec?.taints?.map((t) => `${t.key}:${t.effect}`),
          ["node-role.kubernetes.io/control-plane:NoSchedule"],
        );
      const gpu = nodes.filter((n) =>
        n.spec?.taints?.some((t) => t.key === "dedicated" && t.value === "gpu" && t.effect === "NoSchedule"),
      );
      assert.equal(gpu.length, 7);
      for (const n of nodes) {
        const l = n.metadata!.labels!;
        assert.equal(l["kubernetes.io/os"], "linux");
        assert.ok(["amd64", "arm64", "s390x", "ppc64le"].includes(l["kubernetes.io/arch"]));
        assert.deepEqual(labelValueErrors(l["kubernetes.io/hostname"]), []);
        assert.match(n.status?.nodeInfo?.containerRuntimeVersion ?? "", /^(containerd|cri-o):\/\/\d/);
        assert.match(n.status?.nodeInfo?.machineID ?? "", /^[0-9a-f]{32}$/);
        assert.equal(n.status?.conditions?.find((x) => x.type === "Ready")?.status, "True");
      }
      assert.ok(new Set(nodes.map((n) => n.metadata?.labels?.["kubernetes.io/arch"])).size >= 2);
    } finally {
      await a.sim.close();
      await b.close();
    }
  });

  it("validates fleet files with every problem named by its path", () => {
    const good = parseFleetFile({
      nodes: [{ name: "worker.a", outcome: { kind: "failThenSucceed", failures: 2 } }],
    });
    assert.equal(good.nodes[0].name, "worker.a");
    let message = "";
    try {
      parseFleetFile({
        nodes: [
          { name: "Worker_A" },
          { name: "ok", labels: { "bad key!": "x" }, taints: [{ key: "k", effect: "Sometimes" }] },
          { name: "ok", outcome: { kind: "explode" } },
        ],
        extra: 1,
      });
    } catch (e) {
      assert.ok(e instanceof FleetFileError);
      message = e.message;
    }
    assert.match(message, /nodes\[0\]\.name: invalid node name "Worker_A"/);
    assert.match(message, /nodes\[1\]\.labels\.bad key!: invalid label key/);
    assert.match(message, /nodes\[1\]\.taints\[0\]\.effect: /);
    assert.match(message, /nodes\[2\]\.name: duplicate node name "ok" \(first at nodes\[1\]\)/);
    assert.match(message, /nodes\[2\]\.outcome/);
    assert.match(message, /extra/);
  });

  it("reads a fleet file and applies each node's outcome program", async () => {
    const dir = tempDir("fleet-");
    const file = path.join(dir, "fleet.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        defaultOutcome: { kind: "succeed", durationMs: 1000 },
        nodes: [
          {
            name: "a",
            containerRuntimeVersion: "containerd://2.0.5",
            machineID: "m-a",
            labels: { "katacontainers.io/kata-runtime": "true" },
          },
          { name: "b", ready: false, outcome: { kind: "fail" } },
        ],
      }),
    );
    const c = await startWithClients({ fleet: file, timeScale: 1000 });
    try {
      const a = await c.core.readNode({ name: "a" });
      assert.equal(a.status?.nodeInfo?.machineID, "m-a");
      assert.equal(a.status?.nodeInfo?.containerRuntimeVersion, "containerd://2.0.5");
      assert.equal(a.metadata?.labels?.["katacontainers.io/kata-runtime"], "true");
      const b = await c.core.readNode({ name: "b" });
      assert.equal(b.status?.conditions?.find((x) => x.type === "Ready")?.status, "False");
    } finally {
      await c.sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(startSimulator({ fleet: path.join(dir, "missing.json") }), /cannot read fleet file/);
  });

  it("lists a 100,000-node fleet in pages of 500 through client-node", async function () {
    const started = Date.now();
    const c = await startWithClients({
      nodes: 100_000,
      seed: 3,
      controlPlane: 3,
      tainted: 50,
      failRate: 0.01,
      // client-node opens a connection per page: the figure is the simulator's, not 200 TLS handshakes.
      plainHttp: true,
    });
    const startMs = Date.now() - started;
    try {
      const names = new Set<string>();
      let token: string | undefined;
      let pages = 0;
      const t0 = Date.now();
      do {
        const page = await c.core.listNode({ limit: 500, _continue: token });
        for (const n of page.items) names.add(n.metadata!.name!);
        token = page.metadata?._continue || undefined;
        pages++;
      } while (token && pages < 400);
      const listMs = Date.now() - t0;
      assert.equal(names.size, 100_000);
      assert.equal(pages, 200);
      console.log(`      100,000 nodes: started in ${startMs} ms, listed in ${listMs} ms (${pages} pages)`);
      assert.equal(c.sim.audit.requestCounts()["list nodes"], 200);
    } finally {
      await c.sim.close();
    }
  });
});

describe("kube-sim standalone CLI", function () {
  this.timeout(300_000);

  it("prints `kubeconfig: <path>` first, serves the fleet and the audit endpoints, and exits cleanly on SIGTERM", async () => {
    const root = path.resolve(__dirname, "../..");
    const child = spawn(
      process.execPath,
      [
        path.join(root, "node_modules/ts-node/dist/bin.js"),
        "--transpile-only",
        "sim/cli.ts",
        "--nodes",
        "5",
        "--control-plane",
        "1",
        "--seed",
        "4",
      ],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // The header lines up to `audit: ...`, or the exit that came instead (ts-node compiles the simulator first,
    // slow on a busy machine; mocha's timeout bounds the wait).
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (/^audit: .*\n/m.test(out)) resolve();
      });
      void exited.then((code) => reject(new Error(`kube-sim exited (${code}) before its header: ${err}`)));
    });
    const first = out.split("\n")[0] ?? "";
    assert.match(first, /^kubeconfig: \//);
    const kubeconfig = first.slice("kubeconfig: ".length);
    const clients = clientsFor(kubeconfig);
    const nodes = await clients.core.listNode();
    assert.equal(nodes.items.length, 5);
    const server = clients.kc.getCurrentCluster()!.server;
    assert.match(server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const caPath = /^ca: (.+)$/m.exec(out)?.[1];
    assert.ok(caPath, `the CLI names its CA file: ${out}`);
    // The audit endpoints need no token, but the CA the CLI printed.
    const counts = await new Promise<Record<string, number>>((resolve, reject) =>
      https
        .get(`${server}/_sim/audit/request-counts`, { ca: fs.readFileSync(caPath, "utf8") }, (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve(JSON.parse(text) as Record<string, number>));
        })
        .on("error", reject),
    );
    assert.equal(counts["list nodes"], 1);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(kubeconfig), false, "the temporary kubeconfig is removed on exit");
  });
});
