import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { ConnectionResolutionError, resolveConnection } from "../../rollout/resolveConnection";
import { tempDir } from "../tempDir";

const fixture = (name: string) => readFileSync(path.join(__dirname, "fixtures", name), "utf8");
const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(users: Record<string, unknown>[], current = "main"): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": current,
    clusters: [
      {
        name: "c1",
        cluster: { server: "https://10.0.0.1:6443", "certificate-authority-data": b64(fixture("ca.crt")) },
      },
      {
        name: "c2",
        cluster: {
          server: "https://10.0.0.2:6443",
          "insecure-skip-tls-verify": true,
          "tls-server-name": "api.internal",
        },
      },
    ],
    contexts: users.map((u, i) => ({
      name: i === 0 ? "main" : `ctx${i}`,
      context: { cluster: i === 0 ? "c1" : "c2", user: u.name },
    })),
    users,
  });
}

describe("rollout/resolveConnection (program time, @kubernetes/client-node loader)", () => {
  it("decodes CA and client certificate data into PEM and keeps a static token", () => {
    const spec = resolveConnection({
      kubeconfig: kubeconfig([
        {
          name: "admin",
          user: {
            "client-certificate-data": b64(fixture("client.crt")),
            "client-key-data": b64(fixture("client.key")),
            token: "t0k",
          },
        },
      ]),
    });
    assert.equal(spec.server, "https://10.0.0.1:6443");
    assert.equal(spec.caData, fixture("ca.crt"));
    assert.equal(spec.clientCertificateData, fixture("client.crt"));
    assert.equal(spec.clientKeyData, fixture("client.key"));
    assert.equal(spec.token, "t0k");
    assert.equal(spec.context, "main");
    assert.equal(spec.source, "kubeconfig argument");
  });

  it("reads certificate files now (the provider may run elsewhere later), and honours a context override", () => {
    const dir = tempDir("kc-");
    writeFileSync(path.join(dir, "client.crt"), fixture("client.crt"));
    writeFileSync(path.join(dir, "client.key"), fixture("client.key"));
    const file = path.join(dir, "config");
    writeFileSync(
      file,
      kubeconfig([
        { name: "a", user: { token: "x" } },
        { name: "b", user: { "client-certificate": "client.crt", "client-key": "client.key" } },
      ]),
    );
    const spec = resolveConnection({ kubeconfig: file, context: "ctx1" });
    assert.equal(spec.server, "https://10.0.0.2:6443");
    assert.equal(spec.insecureSkipTlsVerify, true);
    assert.equal(spec.tlsServerName, "api.internal");
    assert.equal(
      spec.clientCertificateData,
      fixture("client.crt"),
      "relative paths resolve against the kubeconfig's folder",
    );
    assert.equal(spec.source, "kubeconfig argument (file)");
  });

  it("keeps an exec credential plugin (run by the provider when it needs a token), and $KUBECONFIG is the fallback", () => {
    const dir = tempDir("kc-");
    const file = path.join(dir, "config");
    writeFileSync(
      file,
      kubeconfig([
        {
          name: "eks",
          user: {
            exec: {
              apiVersion: "client.authentication.k8s.io/v1beta1",
              command: "aws",
              args: ["eks", "get-token", "--cluster-name", "prod"],
              env: [{ name: "AWS_PROFILE", value: "ops" }],
            },
          },
        },
      ]),
    );
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file;
    try {
      const spec = resolveConnection();
      assert.deepEqual(spec.exec, {
        command: "aws",
        args: ["eks", "get-token", "--cluster-name", "prod"],
        env: [{ name: "AWS_PROFILE", value: "ops" }],
        apiVersion: "client.authentication.k8s.io/v1beta1",
        installHint: undefined,
      });
      assert.equal(spec.token, undefined);
      assert.equal(spec.source, "$KUBECONFIG");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  it("refuses legacy auth-provider plugins with a message that says what to use instead", () => {
    assert.throws(
      () =>
        resolveConnection({
          kubeconfig: kubeconfig([{ name: "gke", user: { "auth-provider": { name: "gcp", config: {} } } }]),
        }),
      (err: unknown) =>
        err instanceof ConnectionResolutionError &&
        /auth-provider "gcp" is not supported/.test(err.message) &&
        /exec credential plugin/.test(err.message),
    );
  });

  it("never echoes a kubeconfig document (it holds credentials) in its errors", () => {
    const doc = "apiVersion: v1\nusers: [ {name: a, user: {token: leaked-token-123}\n";
    assert.throws(
      () => resolveConnection({ kubeconfig: doc }),
      (err: unknown) =>
        err instanceof ConnectionResolutionError && !String(err.message).includes("leaked-token-123"),
    );
  });
});
