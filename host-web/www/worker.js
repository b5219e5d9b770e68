// The archive lives here, off the main thread: the wasm Viewer, its SQLite database and OPFS
// persistence (synchronous OPFS access handles exist only in workers).
//
// Protocol (structured-clone messages):
//   main → worker  {id, method, params}      method: info | connect | sync | sessions | search |
//                                            session | machines | curate; params: a plain object
//                                            (absent for info, machines, sync)
//   worker → main  {id, result}              the method's JSON, parsed
//                  {id, error}               a human-readable message (string)
//                  {progress: [stage, done, total]}   during sync, at most ~20 a second
//                  {listed: n}              during sync: n sessions were added to the list
//                                           ahead of their messages (refresh the list)
//                  {upgrading: true}        before the archive, made by an earlier version, is
//                                           brought up to date (a re-index: it can take a while)
//                  {ready: {info}} | {fatal: message}  once, after Viewer.open() (or its failure)

import init, { Viewer } from './pkg/agentsync_web.js';

const errorText = (e) => {
  if (e == null) return 'unknown error';
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message || String(e);
  if (typeof e.message === 'string') return e.message;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
};

const parse = (text) => (typeof text === 'string' ? JSON.parse(text) : text);

// OPFS allows one open access handle per file: a worker of the page being reloaded may still hold
// the database for a moment, so a refusal of that kind is retried for a few seconds.
const LOCKED = /NoModificationAllowed|another open Access Handle|access handle|locked|in use/i;

// For the page's performance marks (docs/benchmarks.md, "where the time goes"): when the module
// was ready, and how many times the archive had to be asked for.
const timing = { init_ms: 0, open_ms: 0, attempts: 0 };

const opening = (async () => {
  await init();
  timing.init_ms = Math.round(performance.now());
  for (let attempt = 0; ; attempt++) {
    timing.attempts = attempt + 1;
    try {
      const viewer = await Viewer.open(() => self.postMessage({ upgrading: true }));
      timing.open_ms = Math.round(performance.now());
      return viewer;
    } catch (e) {
      const text = errorText(e);
      if (!LOCKED.test(text)) throw e;
      if (attempt >= 12) {
        throw new Error(`${text} (is agentsync open in another tab? Close it and reload this one)`);
      }
      await new Promise((r) => setTimeout(r, 250 * Math.min(attempt + 1, 4)));
    }
  }
})();

opening.then(
  async (viewer) => {
    let info = null;
    try {
      info = parse(await viewer.info());
    } catch (e) {
      self.postMessage({ fatal: `the archive opened but cannot describe itself: ${errorText(e)}` });
      return;
    }
    self.postMessage({ ready: { info, timing } });
  },
  (e) => self.postMessage({ fatal: errorText(e) }),
);

let lastProgress = 0;
let lastStage = '';
function onProgress(stage, done, total) {
  const now = Date.now();
  // Every stage change and the end of a stage get through; the rest is thinned out.
  if (stage === lastStage && done !== total && now - lastProgress < 50) return;
  lastStage = stage;
  lastProgress = now;
  self.postMessage({ progress: [String(stage), Number(done) || 0, Number(total) || 0] });
}

function onListed(added) {
  self.postMessage({ listed: Number(added) || 0 });
}

// wasm-bindgen's message when an object is used while another call still borrows it.
const BUSY = /recursive use of an object|already (mutably )?borrowed|unsafe aliasing/i;
let syncing = null;

const methods = {
  info: (v) => v.info(),
  machines: (v) => v.machines(),
  connect: (v, p) => v.connect(JSON.stringify(p)),
  sessions: (v, p) => v.sessions(JSON.stringify(p)),
  search: (v, p) => v.search(JSON.stringify(p)),
  session: (v, p) => v.session(JSON.stringify(p)),
  curate: (v, p) => v.curate(JSON.stringify(p)),
  sync: (v) => {
    lastStage = '';
    return v.sync(onProgress, onListed);
  },
};

self.onmessage = async (event) => {
  const { id, method, params } = event.data || {};
  if (id == null) return;
  try {
    const call = methods[method];
    if (!call) throw new Error(`unknown method ${method}`);
    let viewer;
    try {
      viewer = await opening;
    } catch (e) {
      throw new Error(`the archive could not be opened: ${errorText(e)}`);
    }
    let result;
    if (method === 'sync') {
      const running = call(viewer, params || {});
      syncing = Promise.resolve(running).catch(() => {});
      try {
        result = await running;
      } finally {
        syncing = null;
      }
    } else {
      try {
        result = await call(viewer, params || {});
      } catch (e) {
        // If the Viewer cannot be used while a sync holds it, wait for the sync and try again.
        if (!syncing || !BUSY.test(errorText(e))) throw e;
        await syncing;
        result = await call(viewer, params || {});
      }
    }
    self.postMessage({ id, result: parse(result) });
  } catch (e) {
    self.postMessage({ id, error: errorText(e) });
  }
};
