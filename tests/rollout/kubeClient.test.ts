import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import { KubeApiError, KubeClient, isNotFound } from "../../rollout/kubeClient";
import { tempDir } from "../tempDir";

const fixture = (name: string) => readFileSync(path.join(__dirname, "fixtures", name), "utf8");

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A loopback server whose handler the test swaps; every request is recorded. */
async function startServer(tls: boolean, requireClientCert = false) {
  const seen: { method: string; url: string; auth?: string; clientCN?: string; body: string }[] = [];
  let handler: Handler = (_req, res) => res.end("{}");
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const socket = req.socket as TLSSocket;
      const peer = tls && socket.getPeerCertificate ? socket.getPeerCertificate() : undefined;
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        auth: req.headers.authorization,
        clientCN: peer && peer.subject ? String(peer.subject.CN) : undefined,
        body,
      });
      handler(req, res, body);
    });
  };
  const server = tls
    ? https.createServer(
        {
          key: fixture("server.key"),
          cert: fixture("server.crt"),
          ca: fixture("ca.crt"),
          requestCert: requireClientCert,
          rejectUnauthorized: requireClientCert,
        },
        listener,
      )
    : http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    seen,
    on(h: Handler) {
      handler = h;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (res: http.ServerResponse, code: number, obj: unknown) => {
  res.writeHead(code, { "Content-Type": "application/json" });
  res.end(JSON.stringify(obj));
};

describe("rollout/kubeClient (built-ins only)", function () {
  this.timeout(300_000);
  let clients: KubeClient[] = [];
  const client = (...args: ConstructorParameters<typeof KubeClient>) => {
    const c = new KubeClient(...args);
    clients.push(c);
    return c;
  };
  afterEach(() => {
    clients.forEach((c) => c.close());
    clients = [];
  });

  it("verifies the server against caData, and refuses an unknown CA unless told to skip verification", async () => {
    const s = await startServer(true);
    try {
      s.on((_q, res) => json(res, 200, { kind: "Namespace", metadata: { name: "x" } }));
      const ok = await client({ server: s.url, caData: fixture("ca.crt") }).get<{ kind: string }>(
        "/api/v1/namespaces/x",
      );
      assert.equal(ok.kind, "Namespace");
      await assert.rejects(
        client({ server: s.url }, { maxAttempts: 1 }).get("/api/v1/namespaces/x"),
        /certificate/i,
      );
      const skipped = await client({ server: s.url, insecureSkipTlsVerify: true }).get<{ kind: string }>(
        "/x",
      );
      assert.equal(skipped.kind, "Namespace");
    } finally {
      await s.close();
    }
  });

  it("presents a client certificate the server requires", async () => {
    const s = await startServer(true, true);
    try {
      s.on((_q, res) => json(res, 200, {}));
      await client({
        server: s.url,
        caData: fixture("ca.crt"),
        clientCertificateData: fixture("client.crt"),
        clientKeyData: fixture("client.key"),
      }).get("/version");
      assert.equal(s.seen[0].clientCN, "kata-admin");
      await assert.rejects(
        client({ server: s.url, caData: fixture("ca.crt") }, { maxAttempts: 1 }).get("/version"),
      );
    } finally {
      await s.close();
    }
  });

  it("sends a bearer token, re-reading a token file on every request (rotated ServiceAccount tokens)", async () => {
    const s = await startServer(false);
    try {
      s.on((_q, res) => json(res, 200, {}));
      await client({ server: s.url, token: "static-token" }).get("/a");
      const dir = tempDir("kube-token-");
      const file = path.join(dir, "token");
      writeFileSync(file, "first\n");
      const c = client({ server: s.url, tokenFile: file });
      await c.get("/b");
      writeFileSync(file, "second");
      await c.get("/c");
      await client({ server: s.url, username: "u", password: "p" }).get("/d");
      assert.deepEqual(
        s.seen.map((r) => r.auth),
        [
          "Bearer static-token",
          "Bearer first",
          "Bearer second",
          `Basic ${Buffer.from("u:p").toString("base64")}`,
        ],
      );
    } finally {
      await s.close();
    }
  });

  it("runs an exec credential plugin, passes KUBERNETES_EXEC_INFO and env, and refreshes once on 401", async () => {
    const s = await startServer(false);
    const dir = tempDir("kube-exec-");
    const counter = path.join(dir, "count");
    const plugin = path.join(dir, "plugin.js");
    writeFileSync(counter, "0");
    writeFileSync(
      plugin,
      `const fs=require("fs");const n=Number(fs.readFileSync(${JSON.stringify(counter)},"utf8"))+1;` +
        `fs.writeFileSync(${JSON.stringify(counter)},String(n));` +
        `const info=JSON.parse(process.env.KUBERNETES_EXEC_INFO);` +
        `process.stdout.write(JSON.stringify({apiVersion:info.apiVersion,kind:"ExecCredential",` +
        `status:{token:process.env.TOKEN_PREFIX+"-"+n+"-"+info.kind}}));`,
    );
    try {
      s.on((req, res) =>
        req.headers.authorization === "Bearer tok-1-ExecCredential"
          ? json(res, 401, { kind: "Status", code: 401, reason: "Unauthorized", message: "expired" })
          : json(res, 200, {}),
      );
      const c = client({
        server: s.url,
        exec: {
          command: process.execPath,
          args: [plugin],
          env: [{ name: "TOKEN_PREFIX", value: "tok" }],
          apiVersion: "client.authentication.k8s.io/v1",
        },
      });
      await c.get("/x");
      await c.get("/y");
      assert.deepEqual(
        s.seen.map((r) => r.auth),
        ["Bearer tok-1-ExecCredential", "Bearer tok-2-ExecCredential", "Bearer tok-2-ExecCredential"],
      );
      const broken = client({
        server: s.url,
        exec: { command: process.execPath, args: ["-e", "process.exit(3)"] },
      });
      await assert.rejects(broken.get("/z"), /exec credential plugin ".*" exited 3/);
      const missing = client({
        server: s.url,
        exec: { command: "/nonexistent/kubelogin", installHint: "install it" },
      });
      await assert.rejects(missing.get("/z"), /command not found \(install it\)/);
    } finally {
      await s.close();
    }
  });

  it("follows continue tokens through a paginated LIST and keeps the first page's resourceVersion", async () => {
    const s = await startServer(false);
    try {
      s.on((req, res) => {
        const u = new URL(req.url ?? "", "http://x");
        const page = Number(u.searchParams.get("continue") || "0");
        assert.equal(u.searchParams.get("labelSelector"), "a=b");
        json(res, 200, {
          kind: "JobList",
          metadata: { resourceVersion: "77", continue: page < 2 ? String(page + 1) : undefined },
          items: [{ metadata: { name: `j${page}` } }],
        });
      });
      const list = await client({ server: s.url }, { pageSize: 1 }).list<{ metadata: { name: string } }>(
        "/apis/batch/v1/namespaces/ns/jobs",
        { labelSelector: "a=b" },
      );
      assert.deepEqual(
        list.items.map((i) => i.metadata.name),
        ["j0", "j1", "j2"],
      );
      assert.equal(list.resourceVersion, "77");
      assert.ok(s.seen.every((r) => r.url.includes("limit=1")));
    } finally {
      await s.close();
    }
  });

  it("streams watch events split across chunks, and rejects with 410 on an Expired ERROR event", async () => {
    const s = await startServer(false);
    try {
      s.on((req, res) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        if ((req.url ?? "").includes("resourceVersion=1")) {
          const a = JSON.stringify({
            type: "ADDED",
            object: { metadata: { name: "a", resourceVersion: "2" } },
          });
          const b = JSON.stringify({
            type: "MODIFIED",
            object: { metadata: { name: "a", resourceVersion: "3" } },
          });
          const bm = JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } });
          res.write(a.slice(0, 10));
          setTimeout(() => {
            res.write(a.slice(10) + "\n" + b + "\n" + bm + "\n");
            res.end();
          }, 20);
        } else {
          res.end(
            JSON.stringify({
              type: "ERROR",
              object: {
                kind: "Status",
                code: 410,
                reason: "Expired",
                message: "too old resource version: 0 (5)",
              },
            }) + "\n",
          );
        }
      });
      const c = client({ server: s.url });
      const events: string[] = [];
      const rv = await c.watch<{ metadata: { name?: string; resourceVersion: string } }>(
        "/apis/batch/v1/namespaces/ns/jobs",
        { resourceVersion: "1" },
        (e) => events.push(`${e.type}:${e.object.metadata.name}`),
      );
      assert.deepEqual(events, ["ADDED:a", "MODIFIED:a"]);
      assert.equal(rv, "9");
      await assert.rejects(
        c.watch("/apis/batch/v1/namespaces/ns/jobs", { resourceVersion: "0" }, () => undefined),
        (err: unknown) => err instanceof KubeApiError && err.code === 410 && err.reason === "Expired",
      );
    } finally {
      await s.close();
    }
  });

  it("retries 429 (plain text + Retry-After) and 5xx for reads, never a 500 on a create; parses Status errors", async () => {
    const s = await startServer(false);
    try {
      let calls = 0;
      s.on((req, res) => {
        calls++;
        if (req.url?.includes("missing")) {
          return json(res, 404, {
            kind: "Status",
            code: 404,
            reason: "NotFound",
            message: 'jobs.batch "x" not found',
          });
        }
        if (req.method === "GET" && calls === 1) {
          res.writeHead(429, { "Retry-After": "0", "Content-Type": "text/plain" });
          return res.end("Too many requests, please try again later.");
        }
        if (req.method === "GET" && calls === 2)
          return json(res, 503, { kind: "Status", code: 503, message: "busy" });
        if (req.method === "GET") return json(res, 200, { ok: true });
        return json(res, 500, { kind: "Status", code: 500, reason: "InternalError", message: "boom" });
      });
      const c = client({ server: s.url });
      assert.deepEqual(await c.get("/r"), { ok: true });
      assert.equal(calls, 3);
      await assert.rejects(c.create("/apis/batch/v1/namespaces/ns/jobs", {}), /boom/);
      assert.equal(calls, 4, "a create that got a 500 must not be sent twice");
      const err = await c.create("/missing", {}).catch((e: unknown) => e);
      assert.ok(isNotFound(err));
      assert.equal(await c.delete("/missing/x"), false, "deleting a missing object is done");
      assert.equal(await c.getOptional("/missing/y"), undefined);
    } finally {
      await s.close();
    }
  });

  it("names the server when it cannot be reached, bounded in attempts", async () => {
    const c = client({ server: "http://127.0.0.1:9" }, { maxAttempts: 2 });
    const t = Date.now();
    await assert.rejects(
      c.get("/x", "read job"),
      /read job: cannot reach the Kubernetes API at http:\/\/127\.0\.0\.1:9/,
    );
    assert.ok(Date.now() - t < 5000);
  });
});
