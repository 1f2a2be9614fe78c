// The layer rule (eslint/layers.mjs) run through ESLint itself with the project's own config, on code placed at
// paths inside the repository: an upward or sideways import fails the lint, a downward one passes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { ESLint } from "eslint";

const root = path.resolve(__dirname, "..", "..");
const eslint = new ESLint({ cwd: root });

/** The layer rule's messages for `code` linted as the repository file `at`. */
async function layerProblems(at: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, at) });
  assert.ok(result, `no lint result for ${at}`);
  return result.messages.filter((m) => m.ruleId === "project/layers-point-down").map((m) => m.message);
}

describe("structure: imports only point down the layers", function () {
  this.timeout(300_000);

  it("fails the fixture file: kube/ importing rollout/", async () => {
    const fixture = readFileSync(path.join(__dirname, "fixtures", "upward-import.ts.fixture"), "utf8");
    const problems = await layerProblems("kube/fixture.ts", fixture);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0] ?? "",
      /^kube \(kube\/fixture\.ts\) may not import rollout \(rollout\/kubeClient\), a layer above it/,
    );
  });

  const cases: [at: string, source: string, allowed: boolean][] = [
    ["rollout/x.ts", "../chart/render", true],
    ["rollout/x.ts", "../kube/jobStatus", true],
    ["rollout/x.ts", "../components/args", false],
    ["chart/x.ts", "../components/args", false],
    ["chart/x.ts", "../kube/labelSelector", true],
    ["components/x.ts", "../rollout/types", true],
    ["sim/x.ts", "../dispatcher/naming", false],
    ["dispatcher/x.ts", "../sim/store", false],
    ["main/x.ts", "../sim/index", true],
    ["index.ts", "./components/kataDeploy", true],
    ["kube/x.ts", "./labelSelector", true],
  ];
  for (const [at, source, allowed] of cases) {
    it(`${at} importing "${source}": ${allowed ? "allowed" : "refused"}`, async () => {
      const problems = await layerProblems(at, `import { a } from "${source}";\nexport const b = a;\n`);
      assert.equal(problems.length, allowed ? 0 : 1, problems.join("\n"));
    });
  }

  it("refuses re-exports and dynamic imports that point up", async () => {
    assert.equal((await layerProblems("kube/x.ts", `export * from "../main/cli";\n`)).length, 1);
    assert.equal((await layerProblems("kube/x.ts", `export { a } from "../main/cli";\n`)).length, 1);
    assert.equal((await layerProblems("kube/x.ts", `export const m = import("../main/cli");\n`)).length, 1);
  });
});
