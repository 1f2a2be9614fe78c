// The provider survives the engine's serialization round trip and needs no npm module at run time.
import assert from "node:assert/strict";
import { isBuiltin, requiredModules, serializedProvider } from "./serialized";

describe("rollout provider serialization", function () {
  this.timeout(300_000);

  it("serializes, and the text requires Node built-ins only", async () => {
    const { text } = await serializedProvider();
    const modules = requiredModules(text);
    assert.ok(modules.length > 0);
    const foreign = modules.filter((m) => !isBuiltin(m));
    assert.deepEqual(foreign, [], `the serialized provider requires npm modules: ${foreign.join(", ")}`);
    for (const expected of ["https", "http", "child_process"])
      assert.ok(modules.includes(expected), expected);
  });

  it("loads from the text and validates inputs with messages naming the field", async () => {
    const { provider } = await serializedProvider();
    assert.ok(provider.check);
    const result = await provider.check(
      {} as never,
      {
        connection: { server: "ftp://x" },
        namespace: "",
        mode: "jobs",
        timeoutSeconds: 0,
      } as never,
    );
    const byProperty = Object.fromEntries((result.failures ?? []).map((f) => [f.property, f.reason]));
    assert.match(byProperty.connection, /connection\.server: expected an http:\/\/ or https:\/\/ URL/);
    assert.match(byProperty.mode, /expected "job" or "daemonset", got "jobs"/);
    assert.match(byProperty.timeoutSeconds, /positive/);
    assert.ok(byProperty.namespace);
  });

  it("loads in a module whose require cannot see node_modules (a consumer without our dependencies)", async () => {
    const { text } = await serializedProvider();
    const Module = (await import("node:module")).default as unknown as {
      new (id: string): {
        paths: string[];
        _compile(code: string, file: string): void;
        exports: { handler: () => unknown };
      };
    };
    const m = new Module("/nonexistent/consumer/__provider.js");
    m.paths = []; // nothing but built-ins resolves
    m._compile(text, "/nonexistent/consumer/__provider.js");
    const provider = m.exports.handler() as {
      create: unknown;
      delete: unknown;
      diff: unknown;
      read: unknown;
      update: unknown;
    };
    for (const method of ["create", "update", "delete", "diff", "read"] as const) {
      assert.equal(typeof provider[method], "function", method);
    }
  });

  it("does not reject values that are unknown during a preview, and proposes an update for them", async () => {
    const { provider } = await serializedProvider();
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    assert.ok(provider.check && provider.diff);
    const result = await provider.check(
      {} as never,
      {
        connection: { server: "https://10.0.0.1:6443", token: "t" },
        namespace: "kata-system",
        mode: "job",
        install: unknown,
        cleanupOnDestroy: true,
        cleanup: unknown,
        runKey: unknown,
        timeoutSeconds: 60,
      } as never,
    );
    assert.deepEqual(result.failures, []);
    const diff = await provider.diff(
      "x",
      { lastRunKey: "v1:a", mode: "job" } as never,
      { runKey: unknown, mode: "job" } as never,
    );
    assert.deepEqual(diff, { changes: true });
  });
});

describe("shared pure modules after the closure serializer", function () {
  this.timeout(300_000);

  // Module-level Sets/Maps and class field initializers do not survive serialization; this runs one of the
  // shared helpers the provider reaches, serialized the way the engine serializes the provider.
  it("kube/jobStatus describeStuckPod still recognises a stuck image pull", async () => {
    const pulumi = await import("@pulumi/pulumi");
    const { describeStuckPod } = await import("../../kube/jobStatus");
    const serialized = await pulumi.runtime.serializeFunction(() => describeStuckPod, { allowSecrets: true });
    const Module = (await import("node:module")).default as unknown as {
      new (id: string): { _compile(code: string, file: string): void; exports: { handler: () => unknown } };
    };
    const m = new Module("/serialized/describeStuckPod.js");
    m._compile(serialized.text, "/serialized/describeStuckPod.js");
    const fn = m.exports.handler() as typeof describeStuckPod;
    const message = fn([
      {
        metadata: { name: "p-1" },
        status: {
          phase: "Pending",
          containerStatuses: [
            {
              name: "cri",
              state: { waiting: { reason: "ImagePullBackOff", message: "pull access denied" } },
            },
          ],
        },
      },
    ]);
    assert.equal(message, "container cri of pod p-1 is waiting: ImagePullBackOff: pull access denied");
  });
});
