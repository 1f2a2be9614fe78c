// The dispatcher's Job informer across a relist: a Job cached from a create's answer while the LIST was under way,
// and created and removed before the LIST's snapshot (TTL 0), is in neither the list nor any later watch event.
// Regression: it stayed cached as running, so its node waited for good and the run never ended.
import { strict as assert } from "node:assert";
import { JobInformer } from "../../dispatcher/jobInformer";
import type { DispatcherKubeApi, KubeJob, ListPage } from "../../dispatcher/kubeApi";
import { silentLogger } from "../../dispatcher/log";
import type { JobLike } from "../../kube/jobStatus";

function job(name: string, uid: string): KubeJob {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, uid, annotations: { "kata-deploy-job-dispatcher/node-name": "n1" } },
    status: {},
  } as KubeJob;
}

/** An informer over a fake API whose LIST answers when the test says, and whose GET knows `existing`. */
function harness(existing: Map<string, KubeJob>) {
  let answerList: (page: ListPage<KubeJob>) => void = () => {};
  const gone: string[] = [];
  const tasks: Promise<void>[] = [];
  const api = {
    listJobs: () =>
      new Promise<ListPage<KubeJob>>((resolve) => {
        answerList = resolve;
      }),
    getJob: async (_namespace: string, name: string) => {
      const found = existing.get(name);
      if (!found) throw Object.assign(new Error("not found"), { code: 404 });
      return found;
    },
  } as unknown as DispatcherKubeApi;
  const informer = new JobInformer({
    api: () => api,
    call: (_what, fn) => fn(new AbortController().signal),
    namespace: "ns",
    labelSelector: "o=p",
    log: silentLogger,
    signal: new AbortController().signal,
    spawn: (task) => void tasks.push(task()),
    onJob: () => {},
    onJobGone: (name: string, _last: JobLike) => void gone.push(name),
    onRefused: () => {},
  });
  return {
    informer,
    gone,
    answerList: (page: ListPage<KubeJob>) => answerList(page),
    settled: async () => {
      while (tasks.length > 0) await tasks.shift();
    },
  };
}

describe("dispatcher Job informer: a relist", () => {
  it("lets go of a Job cached during the list that was removed before the list's snapshot", async () => {
    const h = harness(new Map());
    const relisted = h.informer.relist();
    h.informer.remember(job("p-n1", "u1"));
    h.answerList({ items: [], resourceVersion: "9" });
    await relisted;
    await h.settled();
    assert.deepEqual(h.gone, ["p-n1"]);
    assert.equal(h.informer.has("p-n1"), false);
  });

  it("keeps a Job cached during the list that was created after its snapshot (the watch will tell)", async () => {
    const created = job("p-n1", "u1");
    const h = harness(new Map([["p-n1", created]]));
    const relisted = h.informer.relist();
    h.informer.remember(created);
    h.answerList({ items: [], resourceVersion: "9" });
    await relisted;
    await h.settled();
    assert.deepEqual(h.gone, []);
    assert.equal(h.informer.has("p-n1"), true);
  });

  it("lets go of Jobs cached before the list that the list no longer shows, without a GET", async () => {
    const h = harness(new Map([["p-n1", job("p-n1", "u1")]]));
    h.informer.remember(job("p-n1", "u1"));
    const relisted = h.informer.relist();
    h.answerList({ items: [], resourceVersion: "9" });
    await relisted;
    await h.settled();
    assert.deepEqual(h.gone, ["p-n1"]);
  });
});
