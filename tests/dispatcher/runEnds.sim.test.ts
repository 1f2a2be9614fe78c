// The run ends once every node has its result, whatever order the API's answers and the watch's news arrive in.
// Regression: a create whose answer was lost (retried, then 409) looked the Job up with a GET and ignored what the
// watch had said meanwhile. When the Job had finished and been removed (TTL 0) before the GET's answer was read,
// the node stayed in flight for good and the dispatcher never ended, though every node was done; when it was
// removed before the GET, the node got a second Job.
import { strict as assert } from "node:assert";
import { KubeConfig } from "@kubernetes/client-node";
import { startSimulator } from "../../sim";
import { clientNodeApi, type DispatcherKubeApi } from "../../dispatcher/kubeApi";
import { silentLogger } from "../../dispatcher/log";
import { jobName } from "../../dispatcher/naming";
import { runDispatcher, type ResultsDocument } from "../../dispatcher/run";
import {
  assertCoveredExactlyOnce,
  createOwnerJob,
  installTemplate,
  NS,
  OWNER_JOB,
  PREFIX,
  worker,
  writeTemplate,
} from "./helpers";

/** Resolves with the run's document, or rejects once `ms` pass without it (the run then is killed). */
function endsWithin(run: Promise<ResultsDocument>, ms: number, what: string): Promise<ResultsDocument> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the run had not ended ${ms / 1000}s later`)), ms);
  });
  return Promise.race([run, bound]).finally(() => clearTimeout(timer));
}

describe("dispatcher run ends", function () {
  this.timeout(300_000);

  const cases: [string, "before" | "after"][] = [
    ["when an adopted Job finished and was removed before the GET that found it was answered", "after"],
    ["with one Job per node when the Job that took the name was gone before the GET (404)", "before"],
  ];
  for (const [what, removed] of cases)
    it(what, async () => {
      // w-0's install of 100 simulated minutes lasts 10 s real: the retried create, sent a few ms after the first,
      // finds the Job still there (409) even on a busy machine.
      const sim = await startSimulator({
        fleet: { nodes: [worker("w-0", { kind: "succeed", durationMs: 6_000_000 }), worker("w-1")] },
        timeScale: 600,
      });
      const kill = new AbortController();
      try {
        createOwnerJob(sim);
        const kc = new KubeConfig();
        kc.loadFromFile(sim.kubeconfigPath);
        const real = clientNodeApi(kc);
        const target = jobName(PREFIX, "w-0");
        let answerLost = false;
        const api: DispatcherKubeApi = {
          ...real,
          // The first create of w-0's Job reaches the server, but its answer is lost (as a reset connection is).
          createJob: async (namespace, job, signal) => {
            const created = await real.createJob(namespace, job, signal);
            if (created.metadata?.name === target && !answerLost) {
              answerLost = true;
              throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
            }
            return created;
          },
          // The GET that looks at the existing Job is answered while it runs but reaches the dispatcher only after
          // the Job finished and its TTL of 0 removed it ("after"), or is sent only then ("before"); the watch told
          // the dispatcher both meanwhile.
          getJob: async (namespace, name, signal) => {
            const gone = () => sim.waitFor(() => !sim.get("jobs", NS, target), 60_000);
            if (name === target && removed === "before") await gone();
            const job = await real.getJob(namespace, name, signal);
            if (name === target && removed === "after") await gone();
            return job;
          },
        };
        const doc = await endsWithin(
          runDispatcher(
            {
              jobTemplate: writeTemplate(installTemplate({ ttlSeconds: 0 })),
              namePrefix: PREFIX,
              ownerJobName: OWNER_JOB,
              namespace: NS,
              parallelism: 2,
            },
            { api, logger: silentLogger, retry: { baseDelayMs: 1, maxDelayMs: 5 }, killSignal: kill.signal },
          ),
          60_000,
          "every node's Job was gone",
        );
        assert.ok(answerLost, "the lost answer was injected");
        assert.equal(doc.exitCode, 0, doc.error);
        assert.deepEqual(
          doc.nodes.map((n) => [n.node, n.outcome]),
          [
            ["w-0", "succeeded"],
            ["w-1", "succeeded"],
          ],
        );
        // Ground truth: one Job per node, though the create of w-0 was sent twice.
        assertCoveredExactlyOnce(sim, ["w-0", "w-1"]);
      } finally {
        kill.abort();
        await sim.close();
      }
    });
});
