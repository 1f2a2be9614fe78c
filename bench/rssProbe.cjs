// Preloaded into the benchmarked dispatcher process (`node --require`): on exit, write the process's peak
// resident set size (KiB) and its CPU time (user and system, µs), from the kernel's accounting, as JSON to the
// file named by BENCH_RSS_FILE.
// CommonJS on purpose: `--require` loads it before the bundle, without a TypeScript loader.
"use strict";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require("node:fs");
process.on("exit", () => {
  const file = process.env.BENCH_RSS_FILE;
  if (!file) return;
  const u = process.resourceUsage();
  fs.writeFileSync(
    file,
    JSON.stringify({ maxRssKiB: u.maxRSS, userUs: u.userCPUTime, systemUs: u.systemCPUTime }),
  );
});
