// Reads the version of a local chart directory (the one I/O of planning: a local chart has no version
// argument, its Chart.yaml says).
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { KataDeployArgsError } from "./validation";

export function readLocalChartVersion(chartDir: string): string {
  const file = path.join(chartDir, "Chart.yaml");
  let version: unknown;
  try {
    version = (parse(fs.readFileSync(file, "utf8")) as { version?: unknown } | null)?.version;
  } catch (e) {
    throw new KataDeployArgsError([
      {
        path: "chart.path",
        message: `cannot read ${file} (${(e as Error).message}); give the directory of an unpacked chart`,
      },
    ]);
  }
  if (typeof version !== "string" || version === "") {
    throw new KataDeployArgsError([
      { path: "chart.path", message: `${file} has no version; a chart's Chart.yaml must set version` },
    ]);
  }
  return version;
}
