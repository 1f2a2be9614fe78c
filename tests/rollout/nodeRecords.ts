// Nodes as the dispatcher leaves them: the record (kube/jobStatus.ts nodeRecordPatch) of Job `<owner>-<node>`.
import { nodeRecordPatch } from "../../kube/jobStatus";

export interface RecordedNode {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** A node carrying the record Job `<owner>-<name>` in `namespace` would leave (none without `record`). */
export function nodeWithRecord(
  name: string,
  namespace: string,
  record?: { owner: string; outcome: "succeeded" | "failed"; payload?: string },
): RecordedNode {
  if (!record) return { metadata: { name } };
  const patch = nodeRecordPatch(
    { node: name, outcome: record.outcome, attempts: 1, job: `${record.owner}-${name}` },
    namespace,
    undefined,
    record.payload,
  );
  const strip = (o: Record<string, string | null>) =>
    Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== null));
  return {
    metadata: { name, labels: strip(patch.metadata.labels), annotations: strip(patch.metadata.annotations) },
  };
}
