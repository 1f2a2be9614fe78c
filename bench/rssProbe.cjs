// Preloaded into the benchmarked dispatcher process (`node --require`): on exit, write the process's peak
// resident set size (KiB, from the kernel's accounting) to the file named by BENCH_RSS_FILE.
// CommonJS on purpose: `--require` loads it before the bundle, without a TypeScript loader.
"use strict";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require("node:fs");
process.on("exit", () => {
  const file = process.env.BENCH_RSS_FILE;
  if (file) fs.writeFileSync(file, String(process.resourceUsage().maxRSS));
});
