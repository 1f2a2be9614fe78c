// Where a process's CPU time goes, from the V8 CPU profile that `node --cpu-prof` writes (a `.cpuprofile` JSON
// file): self time per function, largest first. Pure; `run.ts` reads the file and prints the summary.
import { z } from "zod";

const CallFrame = z.object({
  functionName: z.string(),
  url: z.string(),
  lineNumber: z.number(),
  columnNumber: z.number(),
});

const CpuProfile = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrame })),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});

export interface FunctionTime {
  /** `name (file:line:column)`; V8's pseudo-frames keep their own names: `(garbage collector)`, `(idle)`, `(program)`. */
  where: string;
  selfMs: number;
  /** Share of all sampled time, idle included. */
  share: number;
}

export interface ProfileSummary {
  sampledMs: number;
  idleMs: number;
  top: FunctionTime[];
}

/** Self time per function of a parsed `.cpuprofile` (each sample's time delta goes to the frame it hit). */
export function summarizeCpuProfile(json: unknown, count = 15): ProfileSummary {
  const profile = CpuProfile.parse(json);
  const whereById = new Map<number, string>();
  for (const node of profile.nodes) whereById.set(node.id, describeFrame(node.callFrame));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    const where = whereById.get(id) ?? `(unknown node ${id})`;
    selfUs.set(where, (selfUs.get(where) ?? 0) + delta);
    totalUs += delta;
  });
  const top = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([where, us]) => ({ where, selfMs: us / 1000, share: totalUs ? us / totalUs : 0 }));
  return { sampledMs: totalUs / 1000, idleMs: (selfUs.get("(idle)") ?? 0) / 1000, top };
}

function describeFrame(frame: z.infer<typeof CallFrame>): string {
  const name = frame.functionName || "(anonymous)";
  if (!frame.url) return name;
  const file = frame.url.slice(frame.url.lastIndexOf("/") + 1);
  // Both are 0-based in the profile; the column tells functions of a minified bundle's long lines apart.
  return `${name} (${file}:${frame.lineNumber + 1}:${frame.columnNumber + 1})`;
}

/** The summary as lines for a terminal or RESULTS.md. */
export function formatProfileSummary(summary: ProfileSummary): string[] {
  const busyMs = summary.sampledMs - summary.idleMs;
  return [
    `sampled ${summary.sampledMs.toFixed(0)} ms, of which idle ${summary.idleMs.toFixed(0)} ms, busy ${busyMs.toFixed(0)} ms; self time, largest first:`,
    ...summary.top.map(
      (f) => `  ${f.selfMs.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.where}`,
    ),
  ];
}
