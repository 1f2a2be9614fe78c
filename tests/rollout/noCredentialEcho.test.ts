// No credential ever reaches a message: every way a kubeconfig argument can be wrong, carrying a marker
// credential, goes through the loader (rollout/resolveConnection.ts), the component's checks, `npm run plan` and
// `npm start`'s option handling; neither the errors nor anything written to stderr or the console may hold it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runPlanCli } from "../../components/planCli";
import { checkArgs } from "../../components/validation";
import { main as startMain } from "../../main/cli";
import {
  ConnectionResolutionError,
  recogniseKubeconfigArgument,
  resolveConnection,
} from "../../rollout/resolveConnection";
import { UsageError } from "../../stdio/exit";
import { tempDir } from "../tempDir";

const MARKER = "kdMarkerCredential0x7f3c9e";
const TOKEN = `eyJhbGciOiJSUzI1NiJ9.${MARKER}.c2lnbmF0dXJl`;
const b64 = (s: string) => Buffer.from(s).toString("base64");
const b64url = (s: string) => Buffer.from(s).toString("base64url");

function kubeconfig(
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
  context = "main",
): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    `current-context: ${context}`,
    `clusters: [{name: c, cluster: ${JSON.stringify(cluster)}}]`,
    `contexts: [{name: main, context: {cluster: c, user: u}}]`,
    `users: [{name: u, user: ${JSON.stringify(user)}}]`,
  ].join("\n");
}

const SERVER = { server: "https://10.0.0.1:6443", "insecure-skip-tls-verify": true };

/** Every wrong kubeconfig argument, each carrying the marker; none of them may resolve. */
function wrongArguments(dir: string): Record<string, string> {
  const invalidFile = path.join(dir, "invalid-kubeconfig");
  fs.writeFileSync(invalidFile, `apiVersion: v1\nusers: [{name: u, user: {token: ${TOKEN}}\n`);
  return {
    "a bare token": TOKEN,
    "a bare token with blanks around it": `  ${TOKEN}\n`,
    "base64 of a bare token": b64(TOKEN),
    "url-safe base64 of a bare token": b64url(TOKEN),
    "a mistyped path holding the marker": `/no/such/dir/${MARKER}.yaml`,
    "broken YAML holding a token": `apiVersion: v1\nusers: [{name: u, user: {token: ${TOKEN}}\n`,
    "base64 of broken YAML holding a token": b64(
      `apiVersion: v1\nusers: [{name: u, user: {token: ${TOKEN}}\n`,
    ),
    "a file of broken YAML holding a token": invalidFile,
    "no cluster for the current context": kubeconfig(SERVER, { token: TOKEN }, "elsewhere"),
    "a server that is not a URL": kubeconfig({ server: "ftp:/x" }, { token: TOKEN }),
    "a client certificate without its key": kubeconfig(SERVER, { "client-certificate-data": b64(TOKEN) }),
    "a username without its password": kubeconfig(SERVER, { username: TOKEN }),
    "a legacy auth-provider holding a token": kubeconfig(SERVER, {
      "auth-provider": { name: "gcp", config: { "access-token": TOKEN } },
    }),
    "an exec plugin without a command": kubeconfig(SERVER, {
      exec: { apiVersion: "client.authentication.k8s.io/v1", env: [{ name: "T", value: TOKEN }] },
    }),
    "base64 of a kubeconfig whose server is not a URL": b64(
      kubeconfig({ server: "ftp:/x" }, { token: TOKEN }),
    ),
  };
}

describe("no credential in any message (kubeconfig arguments)", function () {
  this.timeout(300_000);
  const dir = tempDir("kata-echo-");
  let captured = "";
  const originals = { stderr: process.stderr.write, stdout: process.stdout.write, log: console.log };

  beforeEach(() => {
    captured = "";
    const capture = (chunk: unknown) => {
      captured += String(chunk);
      return true;
    };
    process.stderr.write = capture;
    console.log = console.error = console.warn = (...a: unknown[]) => void capture(a.join(" "));
  });
  afterEach(() => {
    process.stderr.write = originals.stderr;
    console.log = originals.log;
    console.error = originals.log;
    console.warn = originals.log;
    assert.ok(!captured.includes(MARKER), `the marker reached stderr or the console:\n${captured}`);
  });

  it("recognises documents, base64 of them and existing files; refuses the rest by length only", () => {
    const doc = kubeconfig(SERVER, { token: "t" });
    const file = path.join(dir, "good-kubeconfig");
    fs.writeFileSync(file, doc);
    assert.equal(recogniseKubeconfigArgument(doc).kind, "document");
    assert.equal(recogniseKubeconfigArgument(b64(doc)).kind, "base64");
    assert.equal(recogniseKubeconfigArgument(b64url(doc)).kind, "base64");
    assert.equal(recogniseKubeconfigArgument(file).kind, "file");
    assert.deepEqual(recogniseKubeconfigArgument(TOKEN), { kind: "unrecognised", length: TOKEN.length });
    assert.equal(resolveConnection({ kubeconfig: b64(doc) }).source, "kubeconfig argument (base64)");
    assert.equal(resolveConnection({ kubeconfig: b64(doc) }).server, "https://10.0.0.1:6443");
  });

  it("the loader refuses every wrong argument with a message that never holds the value", () => {
    for (const [why, value] of Object.entries(wrongArguments(dir))) {
      let message = "";
      try {
        resolveConnection({ kubeconfig: value });
      } catch (e) {
        assert.ok(e instanceof ConnectionResolutionError, `${why}: ${String(e)}`);
        message = e.message;
      }
      assert.notEqual(message, "", `${why}: accepted`);
      assert.ok(!message.includes(MARKER), `${why}: ${message}`);
      assert.match(message, /^kubeconfig/, why);
    }
  });

  it("the component's checks and `npm run plan` never show it (plan prints [secret])", async () => {
    const errors = checkArgs(
      { kubeconfig: TOKEN, image: { reference: "x@sha256:zzz" }, namespace: "Bad" },
      "k",
    );
    assert.ok(errors.errors.length >= 2);
    assert.ok(!JSON.stringify(errors).includes(MARKER));
    const argsFile = path.join(dir, "args.yaml");
    fs.writeFileSync(argsFile, `kubeconfig: ${JSON.stringify(TOKEN)}\n`);
    let out = "";
    const code = await runPlanCli(["--args", argsFile], {
      stdout: (t) => (out += t),
      stderr: (t) => (out += t),
    });
    assert.equal(code, 0);
    assert.match(out, /kubeconfig: "\[secret\]"/);
    assert.ok(!out.includes(MARKER));
    fs.writeFileSync(argsFile, `kubeconfig: ${JSON.stringify(TOKEN)}\nnamespace: Bad\n`);
    out = "";
    assert.equal(
      await runPlanCli(["--args", argsFile], { stdout: (t) => (out += t), stderr: (t) => (out += t) }),
      2,
    );
    assert.ok(!out.includes(MARKER), out);
  });

  it("`npm start --kubeconfig` and an --args kubeconfig: refused as usage errors that never hold it", async () => {
    const argsFile = path.join(dir, "start-args.yaml");
    fs.writeFileSync(argsFile, `kubeconfig: ${JSON.stringify(b64(TOKEN))}\n`);
    for (const argv of [
      ["--kubeconfig", TOKEN, "--yes"],
      ["--kubeconfig", b64(TOKEN), "--yes"],
      ["--kubeconfig", kubeconfig({ server: "ftp:/x" }, { token: TOKEN }), "--yes"],
      ["--args", argsFile, "--yes"],
    ]) {
      await assert.rejects(startMain(argv), (e: Error) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.ok(!e.message.includes(MARKER), e.message);
        return true;
      });
    }
  });
});
