import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { layerBinary, requireBinary } from "../realBinaries";
import { FIXTURE_CASES, FIXTURE_VERSIONS } from "./fixtures/cases";
import { helmObjects } from "./fixtures/objects";
import { chartFromMirror, DEFAULT_MIRROR, helmTemplate } from "./fixtures/render";

// Where the real Helm and the chart sources are on this machine, re-render with Helm now and check that the
// stored fixtures are still what Helm renders (so the offline comparison in helmFixtures.test.ts is against the
// truth, not against stale files). Skips, saying why, on a plain clone without them.
describe("chart: the stored Helm fixtures are what Helm renders now", function () {
  this.timeout(300_000);
  let helm: string;
  const mirror = process.env.KATA_MIRROR ?? DEFAULT_MIRROR;
  before(async function () {
    helm = await requireBinary(this, "helm", () => layerBinary("helm"));
    await requireBinary(this, "kata-containers chart sources", async () => {
      if (!existsSync(mirror)) throw new Error(`no git mirror at ${mirror} (set KATA_MIRROR)`);
      return mirror;
    });
  });

  for (const version of FIXTURE_VERSIONS) {
    it(`chart ${version}: every case re-rendered equals its fixture`, () => {
      const chartDir = chartFromMirror(version, mirror);
      try {
        for (const c of FIXTURE_CASES[version]) {
          const live = parseAllDocuments(helmTemplate(helm, chartDir, c))
            .map((d) => d.toJS() as unknown)
            .filter((o) => o !== null);
          assert.deepEqual(
            live,
            helmObjects(version, c.name),
            `${version}/${c.name}.yaml is stale: run render.ts`,
          );
        }
      } finally {
        rmSync(chartDir.slice(0, chartDir.indexOf(path.join("tools", "packaging"))), {
          recursive: true,
          force: true,
        });
      }
    });
  }
});
