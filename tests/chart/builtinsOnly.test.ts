import assert from "node:assert/strict";
import * as path from "node:path";
import { buildSync } from "esbuild";

// The rollout's serialized dynamic provider imports the renderer and runs from the consumer's folder, so
// nothing under chart may pull in an npm package at run time (design.md §4).
describe("chart: Node built-ins only", () => {
  it("bundles with every npm package marked external, and none is reached", () => {
    const root = path.resolve(__dirname, "../..");
    const result = buildSync({
      entryPoints: [path.join(root, "chart/index.ts")],
      bundle: true,
      platform: "node",
      write: false,
      metafile: true,
      logLevel: "silent",
      packages: "external",
      absWorkingDir: root,
    });
    const external = Object.values(result.metafile.outputs).flatMap((o) =>
      o.imports.filter((i) => i.external).map((i) => i.path),
    );
    assert.deepEqual(
      external.filter((p) => !p.startsWith("node:") && !["fs", "path", "crypto", "os"].includes(p)),
      [],
    );
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(
      inputs.every((p) => p.startsWith("chart/") || p.startsWith("kube/")),
      inputs.join(", "),
    );
  });
});
