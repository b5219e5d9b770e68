// agentsync browser viewer: the page. The archive itself lives in worker.js (wasm + OPFS); this
// module renders it and never puts untrusted text into innerHTML.

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

const $ = (id) => document.getElementById(id);

const PROPS = new Set(['textContent', 'value', 'tabIndex', 'checked', 'open', 'disabled']);

/** h('div', {class: 'x', dataset: {id}, onclick}, 'text', child, [more]) → element. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'testid') el.dataset.testid = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** el.replaceChildren() that skips null/false children, as h() does. */
function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const pad = (n) => String(n).padStart(2, '0');
function fmtTime(ms) {
  if (ms == null) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fmtDuration(ms) {
  if (ms == null || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.round(hrs / 24)} days`;
}
function fmtAgo(ms) {
  if (ms == null) return 'never';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return fmtTime(ms);
}
const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;
const shortOrigin = (o) => o || '';

/** Snippet text with [matched] parts → nodes with <mark>; everything stays text. */
function snippetNodes(snippet) {
  const out = [];
  const re = /\[([^\[\]]+)\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(snippet))) {
    if (m.index > last) out.push(snippet.slice(last, m.index));
    out.push(h('mark', null, m[1]));
    last = re.lastIndex;
  }
  if (last < snippet.length) out.push(snippet.slice(last));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The worker

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextCall = 1;
const calls = new Map();
let onReady;
let onFatal;
const ready = new Promise((ok, fail) => {
  onReady = ok;
  onFatal = fail;
});

function call(method, params) {
  return new Promise((ok, fail) => {
    const id = nextCall++;
    calls.set(id, { ok, fail, method });
    worker.postMessage({ id, method, params });
  }).catch((e) => {
    console.warn(`agentsync: ${method} failed: ${e.message}`);
    throw e;
  });
}

worker.onmessage = (event) => {
  const m = event.data || {};
  if (m.progress) return showProgress(...m.progress);
  if (m.upgrading) return showUpgrading();
  if (m.listed != null) return refreshListed();
  if (m.ready) {
    performance.mark('agentsync-ready', { detail: m.ready.timing || null });
    return onReady(m.ready);
  }
  if (m.fatal) {
    console.error('agentsync: the archive could not be opened:', m.fatal);
    return onFatal(new Error(m.fatal));
  }
  const pending = calls.get(m.id);
  if (!pending) return;
  calls.delete(m.id);
  if ('error' in m) pending.fail(new Error(m.error));
  else pending.ok(m.result);
};
worker.onerror = (event) => {
  const text = event.message
    ? `${event.message} (${event.filename || 'worker'}:${event.lineno || 0})`
    : 'the worker failed to load (is pkg/agentsync_web.js there?)';
  console.error('agentsync worker error:', text);
  onFatal(new Error(text));
  for (const [, p] of calls) p.fail(new Error(text));
  calls.clear();
};
worker.onmessageerror = (e) => console.error('agentsync worker message error', e);

// ---------------------------------------------------------------------------------------------
// State

// The best hits of a search (by rank): more words narrow it; 50 keeps a search under 100 ms over
// 100 k messages (docs/benchmarks.md).
const SEARCH_LIMIT = 50;

const state = {
  info: null,
  sessions: [], // SessionSummary[] for the current trashed/not-trashed view
  sessionsLoaded: false,
  filters: { agent: '', origin: '', tag: '', starred: false, trashed: false, text: '' },
  sort: { key: 'started_ms', dir: -1 },
  showAll: false,
  sel: { list: 0, search: 0 }, // the j/k position in the list and in the search hits
  visible: [], // what j/k walk: [{id, ordinal?}]
  search: { query: '', hits: [], seq: 0 },
  detail: null, // the open session's detail
  conflictCounts: new Map(), // session id → conflicts seen in its detail
  route: { view: '', id: null, ordinal: null },
};

// Sync bookkeeping: an edit is "unpublished" until a sync that started after it succeeds.
const sync = {
  running: null,
  again: false,
  timer: 0,
  editGen: 0,
  publishedGen: 0,
  lastError: null,
  lastReport: null,
};

// ---------------------------------------------------------------------------------------------
// Status line and progress

function pendingEdits() {
  return sync.editGen - sync.publishedGen;
}

function setStatus(text, stateName) {
  const el = $('sync-status');
  el.textContent = text;
  if (stateName) el.dataset.state = stateName;
  el.dataset.pending = String(pendingEdits());
  el.title = text;
}

function refreshPendingNote() {
  const el = $('sync-status');
  el.dataset.pending = String(pendingEdits());
  if (sync.running) return;
  if (el.dataset.state === 'ok' || el.dataset.state === 'local') {
    const base = el.textContent.replace(/ · \d+ local edits? not yet published$/, '');
    const n = pendingEdits();
    el.textContent = n > 0 ? `${base} · ${plural(n, 'local edit')} not yet published` : base;
  }
}

function showProgress(stage, done, total) {
  $('progress-wrap').hidden = false;
  const bar = $('progress');
  if (total > 0) {
    bar.max = total;
    bar.value = Math.min(done, total);
  } else {
    bar.removeAttribute('value'); // indeterminate
  }
  bar.dataset.stage = stage;
  $('progress-label').textContent = total > 0 ? `${stage} ${done}/${total}` : stage;
  setStatus(`Syncing: ${stage}…`, 'syncing');
}

// The archive was made by an earlier version and is being brought up to date before it opens.
function showUpgrading() {
  $('progress-wrap').hidden = false;
  $('progress').removeAttribute('value');
  $('progress-label').textContent = 'upgrading the archive';
  setStatus('Upgrading the archive to this version (once; a large archive can take a minute)…', 'syncing');
}

function hideProgress() {
  $('progress-wrap').hidden = true;
  $('progress-label').textContent = '';
}

function describeReport(r) {
  const parts = [];
  if (r.imported_sessions) parts.push(`${plural(r.imported_sessions, 'session')} imported (${plural(r.imported_messages || 0, 'message')})`);
  if (r.events_published) parts.push(`${plural(r.events_published, 'edit')} published`);
  if (r.events_applied) parts.push(`${plural(r.events_applied, 'edit')} applied`);
  if (r.conflicts) parts.push(plural(r.conflicts, 'conflict'));
  const problems = (r.quarantined?.length || 0) + (r.deferred?.length || 0);
  if (problems) parts.push(`${plural(problems, 'problem')} (see Machines)`);
  return parts.length ? parts.join(', ') : 'up to date';
}

// Messages of a sync that could not reach the bucket at all (versus one it refused).
const UNREACHABLE = /cannot be reached|unreachable|could not (be )?reach|failed to fetch|network|offline|timed? ?out|connection/i;

// ---------------------------------------------------------------------------------------------
// Sync

function hasSettings() {
  return !!state.info?.settings;
}

/** Starts a sync now, or once more after the running one. Resolves when that run is over. */
function runSync() {
  if (!hasSettings()) return Promise.resolve();
  clearTimeout(sync.timer);
  if (sync.running) {
    sync.again = true;
    return sync.running;
  }
  const startGen = sync.editGen;
  $('sync-now').disabled = true;
  setStatus(hasLocalData() ? 'Syncing (showing the local archive meanwhile)…' : 'Syncing…', 'syncing');
  sync.running = (async () => {
    try {
      const report = await call('sync');
      sync.publishedGen = Math.max(sync.publishedGen, startGen);
      sync.lastError = null;
      sync.lastReport = report;
      try {
        state.info = await call('info');
      } catch (e) {
        console.warn('info after sync:', e.message);
      }
      // The list is refreshed before the status says "synced", so what it shows is current.
      try {
        await refreshAfterSync(report);
      } catch (e) {
        console.error('agentsync: refreshing the page after a sync:', e);
      }
      hideProgress();
      setStatus(`Synced ${fmtTime(Date.now())}: ${describeReport(report)}`, 'ok');
    } catch (e) {
      hideProgress();
      sync.lastError = e.message;
      if (UNREACHABLE.test(e.message) || navigator.onLine === false) {
        setStatus(`Offline: showing the local archive (${e.message})`, 'offline');
      } else {
        setStatus(`Sync failed, showing the local archive: ${e.message}`, 'error');
      }
    } finally {
      sync.running = null;
      $('sync-now').disabled = false;
      refreshPendingNote();
      if (sync.again) {
        sync.again = false;
        runSync();
      }
    }
  })();
  if (state.route.view === 'list' && !state.sessions.length) renderList(); // "first sync under way"
  return sync.running;
}

/** A sync shortly after an edit, so that several quick edits go out in one batch. */
function syncSoon() {
  if (!hasSettings()) return;
  if (sync.running) {
    sync.again = true;
    return;
  }
  clearTimeout(sync.timer);
  sync.timer = setTimeout(runSync, 400);
}

async function refreshAfterSync(report) {
  await loadSessions();
  const v = state.route.view;
  if (v === 'session' && (report.imported_sessions || report.events_applied)) {
    await reloadDetail();
  } else if (v === 'machines') {
    renderMachines();
  } else if (v === 'search' && state.search.query && report.imported_messages) {
    runSearch(state.search.query);
  }
}

function hasLocalData() {
  return state.sessions.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Routing: #/ list, #/search?q=, #/s/<id>?o=<ordinal>, #/machines, #/settings

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const q = new URLSearchParams(query);
  if (path.startsWith('/s/')) {
    const o = q.get('o');
    return { view: 'session', id: decodeURIComponent(path.slice(3)), ordinal: o == null ? null : Number(o), where: q.get('in') };
  }
  if (path === '/search') return { view: 'search', query: q.get('q') || '' };
  if (path === '/machines') return { view: 'machines' };
  // A link may fill in the form (never a secret): #/settings?endpoint=…&bucket=…&prefix=…
  if (path === '/settings') return { view: 'settings', prefill: Object.fromEntries(q) };
  return { view: 'list' };
}

/** In-app navigation: a history entry that knows how deep it is, so Escape never leaves the app. */
function go(hash) {
  if (location.hash !== hash) history.pushState({ depth: (history.state?.depth || 0) + 1 }, '', hash);
  onRoute();
}

function back() {
  if (history.state?.depth > 0) {
    history.back();
  } else if (state.route.view !== 'list') {
    history.replaceState({ depth: 0 }, '', '#/');
    onRoute();
  }
}

const sessionHash = (id, ordinal, where) =>
  `#/s/${encodeURIComponent(id)}${ordinal == null ? '' : `?o=${ordinal}${where && where !== 'message' ? `&in=${where}` : ''}`}`;

function showView(name) {
  for (const v of ['fatal', 'settings', 'list', 'search', 'transcript', 'machines']) {
    $(`view-${v}`).hidden = v !== name;
  }
  const tab = { list: 'sessions', search: 'sessions', transcript: 'sessions', machines: 'machines', settings: 'settings' }[name];
  for (const t of ['sessions', 'machines', 'settings']) {
    $(`tab-${t}`).classList.toggle('active', t === tab);
  }
}

async function onRoute() {
  if (!state.info) return; // not open yet
  const r = parseRoute();
  const prev = state.route;
  state.route = r;
  switch (r.view) {
    case 'settings':
      showView('settings');
      renderSettings();
      break;
    case 'machines':
      showView('machines');
      renderMachines();
      break;
    case 'search':
      showView('search');
      if ($('search-input').value !== r.query) $('search-input').value = r.query;
      if (r.query !== state.search.query || !state.search.done) runSearch(r.query);
      else renderHits();
      break;
    case 'session':
      showView('transcript');
      await openSession(r.id, r.ordinal, r.where, prev.view === 'session' && prev.id === r.id);
      break;
    default:
      showView('list');
      if (!state.sessionsLoaded) await loadSessions();
      else renderList();
  }
}

// ---------------------------------------------------------------------------------------------
// Session list

async function loadSessions() {
  try {
    const rows = await call('sessions', {
      starred: false,
      trashed: state.filters.trashed,
      tag: null,
      origin: null,
      limit: null,
    });
    state.sessions = Array.isArray(rows) ? rows : [];
    state.sessionsLoaded = true;
  } catch (e) {
    console.error('sessions:', e.message);
    $('list-empty').hidden = false;
    $('list-empty').textContent = `The session list cannot be read: ${e.message}`;
    return;
  }
  fillFilterOptions();
  if (state.route.view === 'list') renderList();
}

// A first sync lists every machine's sessions before their messages arrive (the worker says
// `listed`): the list is reloaded at once, and once more if more came while it loaded.
const listRefresh = { running: false, again: false };
async function refreshListed() {
  if (listRefresh.running) {
    listRefresh.again = true;
    return;
  }
  listRefresh.running = true;
  try {
    do {
      listRefresh.again = false;
      await loadSessions();
    } while (listRefresh.again);
  } finally {
    listRefresh.running = false;
  }
}

function fillFilterOptions() {
  const fill = (sel, values, all) => {
    const cur = sel.value;
    sel.replaceChildren(h('option', { value: '' }, all));
    for (const v of values) sel.append(h('option', { value: v }, v));
    if (cur && !values.includes(cur)) sel.append(h('option', { value: cur }, cur));
    sel.value = cur;
  };
  const uniq = (f) => [...new Set(state.sessions.flatMap(f))].filter((x) => x !== '' && x != null).sort();
  fill($('f-agent'), uniq((s) => [s.agent]), 'all agents');
  fill($('f-origin'), uniq((s) => [s.origin]), 'all machines');
  fill($('f-tag'), uniq((s) => s.tags || []), 'all tags');
}

function filteredSessions() {
  const f = state.filters;
  const text = f.text.trim().toLowerCase();
  const rows = state.sessions.filter(
    (s) =>
      (!f.agent || s.agent === f.agent) &&
      (!f.origin || s.origin === f.origin) &&
      (!f.tag || (s.tags || []).includes(f.tag)) &&
      (!f.starred || s.starred) &&
      (!text ||
        (s.display_name || '').toLowerCase().includes(text) ||
        (s.title || '').toLowerCase().includes(text) ||
        (s.project || '').toLowerCase().includes(text)),
  );
  const { key, dir } = state.sort;
  const val = (s) => {
    const v = s[key];
    if (typeof v === 'boolean') return v ? 1 : 0;
    return v;
  };
  rows.sort((a, b) => {
    const x = val(a);
    const y = val(b);
    if (x == null && y == null) return 0;
    if (x == null) return 1; // unknown times last, whichever direction
    if (y == null) return -1;
    const c = typeof x === 'string' ? x.localeCompare(y, undefined, { numeric: true, sensitivity: 'base' }) : x - y;
    return c * dir || (b.started_ms ?? 0) - (a.started_ms ?? 0);
  });
  return rows;
}

const LIST_PAGE = 500;

function renderList() {
  const rows = filteredSessions();
  const tbody = $('session-rows');
  const shown = state.showAll ? rows : rows.slice(0, LIST_PAGE);
  state.visible = shown.map((s) => ({ id: s.id }));
  if (state.sel.list >= shown.length) state.sel.list = Math.max(0, shown.length - 1);
  const frag = document.createDocumentFragment();
  shown.forEach((s, i) => frag.append(sessionRow(s, i)));
  tbody.replaceChildren(frag);

  for (const th of document.querySelectorAll('#session-table th[data-sort]')) {
    const active = th.dataset.sort === state.sort.key;
    th.classList.toggle('sorted', active);
    th.setAttribute('aria-sort', active ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  const total = state.sessions.length;
  $('list-count').textContent =
    rows.length === total ? plural(total, 'session') : `${rows.length} of ${plural(total, 'session')}`;
  const empty = $('list-empty');
  empty.hidden = rows.length > 0;
  if (!rows.length) {
    empty.textContent = total
      ? 'No session matches these filters.'
      : state.filters.trashed
        ? 'The trash is empty.'
        : hasSettings()
          ? sync.running
            ? 'Nothing here yet: the first sync is under way.'
            : 'No sessions in this archive yet.'
          : 'No sessions yet: connect to a bucket in Settings.';
  }
  $('list-more').hidden = shown.length === rows.length;
  $('list-more-btn').textContent = `Show all ${rows.length}`;
  markSelected();
}

function sessionRow(s, i) {
  const conflicts = state.conflictCounts.get(s.id) ?? s.conflicts ?? 0;
  return h(
    'tr',
    {
      testid: 'session-row',
      dataset: { id: s.id, index: String(i) },
      class: [s.trashed ? 'trashed' : '', s.parent ? 'sub' : ''].join(' ').trim() || null,
      tabIndex: -1,
    },
    h(
      'td',
      { class: 'c-star' },
      h('button', {
        type: 'button',
        class: `star-toggle${s.starred ? ' on' : ''}`,
        title: s.starred ? 'Unstar' : 'Star',
        'aria-label': s.starred ? 'Unstar' : 'Star',
        'aria-pressed': s.starred ? 'true' : 'false',
        dataset: { action: 'star' },
        textContent: s.starred ? '★' : '☆',
      }),
    ),
    h('td', { class: 'agent' }, s.agent),
    h('td', { class: 'project', title: s.project }, projectName(s.project)),
    h('td', { class: 'origin', title: s.origin }, shortOrigin(s.origin)),
    h('td', { class: 'time', title: s.started_ms ? new Date(s.started_ms).toString() : '' }, fmtTime(s.started_ms)),
    h('td', { class: 'num' }, String(s.message_count ?? '')),
    h(
      'td',
      { class: 'name' },
      s.parent ? h('span', { class: 'badge sub', title: `subagent of ${s.parent}` }, 'sub') : null,
      h('span', { class: 'display-name' }, s.display_name || s.title || s.native_id),
      (s.tags || []).map((t) => h('span', { class: 'tag' }, t)),
      conflicts ? h('span', { class: 'badge conflict', title: 'competing edits, see the session' }, `⚠ ${conflicts}`) : null,
      s.note ? h('span', { class: 'badge note', title: s.note }, 'note') : null,
      s.pending
        ? h('span', { class: 'badge pending', testid: 'pending', title: 'listed by its machine; its messages have not arrived yet' }, 'pending')
        : null,
    ),
  );
}

/** Last path component of a project folder ("/home/u/proj" → "proj"), else the whole value. */
function projectName(p) {
  if (!p) return '';
  const parts = String(p).split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : p;
}

const selKey = () => (state.route.view === 'search' ? 'search' : 'list');

function markSelected() {
  const container = state.route.view === 'search' ? $('search-hits') : $('session-rows');
  for (const el of container.querySelectorAll('.selected')) el.classList.remove('selected');
  const el = container.children[state.sel[selKey()]];
  if (el) el.classList.add('selected');
  return el;
}

function moveSelection(delta) {
  if (!state.visible.length) return;
  const k = selKey();
  state.sel[k] = Math.max(0, Math.min(state.visible.length - 1, state.sel[k] + delta));
  const el = markSelected();
  if (el) el.scrollIntoView({ block: 'nearest' });
}

function openSelected() {
  const item = state.visible[state.sel[selKey()]];
  if (item) go(sessionHash(item.id, item.ordinal, item.where));
}

// ---------------------------------------------------------------------------------------------
// Search

let searchTimer = 0;

async function runSearch(query) {
  const seq = ++state.search.seq;
  state.search.query = query;
  state.search.done = false;
  state.sel.search = 0;
  if (!query.trim()) {
    state.search.hits = [];
    state.search.done = true;
    renderHits();
    return;
  }
  $('search-summary').textContent = 'Searching…';
  try {
    const hits = await call('search', { query, limit: SEARCH_LIMIT });
    if (seq !== state.search.seq) return; // a newer search started
    state.search.hits = Array.isArray(hits) ? hits : [];
    state.search.error = null;
  } catch (e) {
    if (seq !== state.search.seq) return;
    state.search.hits = [];
    state.search.error = e.message;
  }
  state.search.done = true;
  if (state.route.view === 'search') renderHits();
}

function renderHits() {
  const { hits, query, error } = state.search;
  const ol = $('search-hits');
  state.visible = hits.map((x) => ({ id: x.session, ordinal: x.ordinal, where: x.in }));
  if (state.sel.search >= hits.length) state.sel.search = 0;
  $('search-summary').textContent = error
    ? `Search failed: ${error}`
    : !query.trim()
      ? 'Type words to search every message, thinking block and tool call.'
      : hits.length
        ? `${hits.length >= SEARCH_LIMIT ? `The best ${SEARCH_LIMIT}` : plural(hits.length, 'match', 'matches')} for “${query}”`
        : `Nothing matches “${query}”.`;
  const frag = document.createDocumentFragment();
  hits.forEach((x, i) => {
    frag.append(
      h(
        'li',
        { testid: 'search-hit', dataset: { session: x.session, ordinal: String(x.ordinal), index: String(i) }, class: 'hit' },
        h(
          'a',
          { href: sessionHash(x.session, x.ordinal, x.in) },
          h(
            'div',
            { class: 'hit-head' },
            h('span', { class: 'hit-name' }, x.display_name || x.session),
            h('span', { class: `badge in-${x.in}` }, x.in),
            h('span', { class: `role role-${x.role}` }, x.role),
            h('span', { class: 'muted' }, `#${x.ordinal}`),
            x.timestamp_ms != null ? h('span', { class: 'muted' }, fmtTime(x.timestamp_ms)) : null,
          ),
          h('div', { class: 'snippet' }, snippetNodes(x.snippet || '')),
        ),
      ),
    );
  });
  ol.replaceChildren(frag);
  markSelected();
}

// ---------------------------------------------------------------------------------------------
// Transcript

async function openSession(id, ordinal, where, sameSession) {
  const view = $('view-transcript');
  if (!sameSession || !state.detail || state.detail.id !== id) {
    replace(view, h('p', { class: 'muted' }, 'Loading…'));
    view.dataset.id = id;
    let detail;
    try {
      detail = await call('session', { id });
    } catch (e) {
      replace(view, 
        h('p', { class: 'error-text' }, `This session cannot be shown: ${e.message}`),
        h('p', null, h('a', { href: '#/' }, '← back to the list')),
      );
      return;
    }
    if (state.route.view !== 'session' || state.route.id !== id) return; // navigated away meanwhile
    state.detail = detail;
    noteConflicts(detail);
    renderTranscript(detail);
  }
  if (ordinal != null) scrollToOrdinal(ordinal, where);
  else window.scrollTo(0, 0);
}

function noteConflicts(detail) {
  const n = (detail.conflicts || []).length;
  if (n) state.conflictCounts.set(detail.id, n);
  else state.conflictCounts.delete(detail.id);
}

async function reloadDetail() {
  const id = state.detail?.id;
  if (!id) return;
  try {
    const detail = await call('session', { id });
    if (state.detail?.id !== id) return;
    const restore = keepHeaderInputs(state.detail);
    state.detail = detail;
    noteConflicts(detail);
    const y = window.scrollY;
    renderTranscript(detail);
    restore();
    window.scrollTo(0, y);
  } catch (e) {
    console.warn('reload session:', e.message);
  }
}

function scrollToOrdinal(ordinal, where) {
  const el = $('view-transcript').querySelector(`[data-testid="message"][data-ordinal="${Number(ordinal)}"]`);
  if (!el) return;
  // A search hit in the thinking or a tool call opens that part.
  const sel = where === 'thinking' ? 'details.thinking' : where === 'tool' ? 'details.tool' : null;
  if (sel) for (const d of el.querySelectorAll(sel)) d.open = true;
  el.scrollIntoView({ block: 'center' });
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
}

function renderTranscript(d) {
  const view = $('view-transcript');
  view.dataset.id = d.id;
  const header = renderTranscriptHeader(d);
  const pins = new Map((d.pins || []).map((p) => [p.ordinal, p]));
  const list = h('div', { class: 'messages' });
  const frag = document.createDocumentFragment();
  for (const m of d.messages || []) frag.append(renderMessage(m, pins.get(m.ordinal)));
  list.append(frag);
  if (!(d.messages || []).length) {
    list.append(
      h('p', { class: 'muted', testid: 'no-messages' },
        d.pending
          ? `${d.message_count === 1 ? 'The message of this session has' : `The ${d.message_count || 0} messages of this session have`} not arrived yet: ${
              sync.running ? 'they are on their way, and show here when they land.' : 'the next sync brings them.'}`
          : 'No messages.'),
    );
  }
  replace(view, header, list);
}

function renderTranscriptHeader(d) {
  const started = d.started_ms;
  const ended = d.ended_ms;
  const conflicts = d.conflicts || [];
  const pins = (d.pins || []).slice().sort((a, b) => a.ordinal - b.ordinal);
  const subagents = state.sessions.filter((s) => s.parent === d.id);

  const renameInput = h('input', {
    testid: 'rename-input',
    value: d.display_name || '',
    'aria-label': 'Session name',
    placeholder: d.title || 'name this session',
    spellcheck: 'false',
  });
  const renameForm = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        curate('rename', renameInput.value.trim());
      },
    },
    renameInput,
    h('button', { type: 'submit', testid: 'rename-save' }, 'Rename'),
  );

  const tagInput = h('input', { placeholder: 'new tag', 'aria-label': 'New tag', size: 10, testid: 'tag-input', spellcheck: 'false' });
  const tagForm = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        const t = tagInput.value.trim();
        if (t) curate('tag', t);
      },
    },
    tagInput,
    h('button', { type: 'submit', testid: 'tag-add' }, 'Add tag'),
  );

  const noteArea = h('textarea', { rows: 2, placeholder: 'a note about this session', 'aria-label': 'Note', testid: 'note-input' });
  noteArea.value = d.note || '';
  const noteForm = h(
    'form',
    {
      class: 'note-form',
      onsubmit: (e) => {
        e.preventDefault();
        curate('note', noteArea.value);
      },
    },
    noteArea,
    h('button', { type: 'submit', testid: 'note-save' }, 'Save note'),
  );

  const unpublished = pendingEdits() > 0;
  return h(
    'header',
    { class: 'transcript-head', id: 'transcript-head' },
    h(
      'div',
      { class: 'title-row' },
      h('a', { href: '#/', class: 'back', title: 'Back (Esc)', onclick: (e) => { e.preventDefault(); back(); } }, '←'),
      h('h2', { testid: 'session-name' }, d.display_name || d.title || d.native_id),
      d.trashed ? h('span', { class: 'badge trash' }, 'in trash') : null,
      conflicts.length ? h('span', { class: 'badge conflict', testid: 'conflict-badge' }, `⚠ ${plural(conflicts.length, 'conflict')}`) : null,
      unpublished ? h('span', { class: 'badge unpublished', title: 'published by the next sync' }, 'unpublished edits') : null,
    ),
    h(
      'dl',
      { class: 'meta' },
      meta('agent', d.agent),
      meta('project', d.project),
      meta('machine', d.origin),
      meta('started', fmtTime(started)),
      ended != null ? meta('ended', `${fmtTime(ended)}${started != null ? ` (${fmtDuration(ended - started)})` : ''}`) : null,
      meta('messages', String(d.message_count ?? (d.messages || []).length)),
      d.title && d.title !== d.display_name ? meta('title', d.title) : null,
      d.parent ? h('div', null, h('dt', null, 'parent'), h('dd', null, h('a', { href: sessionHash(d.parent) }, d.parent))) : null,
      subagents.length
        ? h(
            'div',
            null,
            h('dt', null, 'subagents'),
            h('dd', null, subagents.map((c, i) => [i ? ', ' : '', h('a', { href: sessionHash(c.id) }, c.display_name || c.native_id)])),
          )
        : null,
      meta('id', d.id),
    ),
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          testid: 'star',
          class: d.starred ? 'on' : null,
          'aria-pressed': d.starred ? 'true' : 'false',
          dataset: { starred: String(!!d.starred) },
          onclick: () => curate(d.starred ? 'unstar' : 'star'),
        },
        d.starred ? '★ Starred' : '☆ Star',
      ),
      h(
        'button',
        { type: 'button', testid: 'trash', onclick: () => curate(d.trashed ? 'restore' : 'trash') },
        d.trashed ? 'Restore from trash' : 'Move to trash',
      ),
      renameForm,
      tagForm,
    ),
    h(
      'div',
      { class: 'tags' },
      (d.tags || []).map((t) =>
        h(
          'span',
          { class: 'tag', testid: 'tag' },
          t,
          h('button', { type: 'button', class: 'x', title: `Remove tag ${t}`, 'aria-label': `Remove tag ${t}`, onclick: () => curate('untag', t) }, '×'),
        ),
      ),
    ),
    noteForm,
    pins.length
      ? h(
          'p',
          { class: 'pins' },
          h('span', { class: 'muted' }, 'Pinned: '),
          pins.map((p) =>
            h('a', { href: sessionHash(d.id, p.ordinal), title: p.note || '', class: 'pin-link' }, `#${p.ordinal}`),
          ),
        )
      : null,
    conflicts.length
      ? h(
          'details',
          { class: 'conflicts', testid: 'conflicts' },
          h('summary', null, 'Competing edits (the kept value won; edit again to settle it)'),
          h(
            'ul',
            null,
            conflicts.map((c) =>
              h(
                'li',
                null,
                h('strong', null, c.field),
                ': kept ',
                h('code', null, fmtValue(c.winner?.value)),
                h('span', { class: 'muted' }, ` (${c.winner?.origin || '?'}, ${c.winner?.hlc || ''})`),
                ', lost ',
                h('code', null, fmtValue(c.loser?.value)),
                h('span', { class: 'muted' }, ` (${c.loser?.origin || '?'}, ${c.loser?.hlc || ''})`),
              ),
            ),
          ),
        )
      : null,
  );
}

/**
 * Before the transcript header is rebuilt (after an edit or a sync): remembers what the user is
 * typing in its fields and which one has the focus; the returned function puts them back.
 */
function keepHeaderInputs(prev, consumed) {
  const head = $('transcript-head');
  if (!head || !prev) return () => {};
  const fields = { rename: 'rename-input', tag: 'tag-input', note: 'note-input' };
  const stored = { rename: prev.display_name || '', tag: '', note: prev.note || '' };
  const kept = {};
  for (const [k, testid] of Object.entries(fields)) {
    const el = head.querySelector(`[data-testid="${testid}"]`);
    if (el && k !== consumed && el.value !== stored[k]) kept[testid] = el.value;
  }
  const active = document.activeElement;
  const focused = active && head.contains(active) ? active.dataset.testid : null;
  return () => {
    const now = $('transcript-head');
    if (!now) return;
    for (const [testid, value] of Object.entries(kept)) {
      const el = now.querySelector(`[data-testid="${testid}"]`);
      if (el) el.value = value;
    }
    if (focused) now.querySelector(`[data-testid="${focused}"]`)?.focus();
  };
}

function meta(k, v) {
  if (v == null || v === '') return null;
  return h('div', null, h('dt', null, k), h('dd', null, v));
}

function fmtValue(v) {
  if (v === null || v === undefined) return 'none';
  if (typeof v === 'string') return JSON.stringify(v);
  return JSON.stringify(v);
}

const LONG_CHARS = 1500;
const LONG_LINES = 25;
const isLong = (s) => s.length > LONG_CHARS || s.split('\n', LONG_LINES + 1).length > LONG_LINES;

/** A <pre> for text; long text goes in a closed <details> and is only put in the DOM when opened. */
function textBlock(text, cls, label) {
  if (!isLong(text)) return h('pre', { class: cls }, text);
  const pre = h('pre', { class: cls });
  const det = h(
    'details',
    { class: 'long' },
    h('summary', null, `${label} (${plural(text.split('\n').length, 'line')}, ${text.length.toLocaleString()} characters)`),
    pre,
  );
  det.addEventListener('toggle', () => {
    if (det.open && !pre.firstChild) pre.textContent = text;
  });
  const preview = h('pre', { class: `${cls} preview` }, text.slice(0, 400).split('\n').slice(0, 6).join('\n') + ' …');
  return h('div', null, preview, det);
}

function renderMessage(m, pin) {
  const pinned = !!pin;
  const role = m.role || 'message';
  const article = h('article', {
    testid: 'message',
    class: `msg role-${role}${m.sidechain ? ' sidechain' : ''}${pinned ? ' pinned' : ''}`,
    dataset: { ordinal: String(m.ordinal), role, pinned: String(pinned) },
    id: `m${m.ordinal}`,
  });
  article.append(
    h(
      'div',
      { class: 'msg-head' },
      h('span', { class: `role role-${role}` }, role),
      m.sidechain ? h('span', { class: 'badge', title: 'a subagent branch' }, 'sidechain') : null,
      m.model ? h('span', { class: 'muted model' }, m.model) : null,
      m.timestamp_ms != null ? h('span', { class: 'muted time' }, fmtTime(m.timestamp_ms)) : null,
      h('a', { class: 'muted ord', href: sessionHash(state.detail?.id || '', m.ordinal) }, `#${m.ordinal}`),
      pinned ? h('span', { class: 'badge pin', title: pin.note || 'pinned', testid: 'pinned' }, 'pinned') : null,
      h(
        'button',
        {
          type: 'button',
          class: 'small pin-btn',
          testid: 'pin',
          onclick: () => curate(pinned ? 'unpin' : 'pin', String(m.ordinal)),
        },
        pinned ? 'Unpin' : 'Pin',
      ),
    ),
  );
  if (pin?.note) article.append(h('p', { class: 'pin-note' }, pin.note));
  if (m.thinking) {
    const det = h('details', { class: 'thinking' }, h('summary', null, `Thinking (${m.thinking.length.toLocaleString()} characters)`));
    const pre = h('pre', { class: 'text' });
    det.append(pre);
    det.addEventListener('toggle', () => {
      if (det.open && !pre.firstChild) pre.textContent = m.thinking;
    });
    article.append(det);
  }
  if (m.content) article.append(textBlock(m.content, 'text', 'Long message'));
  for (const t of m.tool_calls || []) article.append(renderTool(t));
  return article;
}

function prettyInput(input) {
  if (input == null) return '';
  if (typeof input !== 'string') return JSON.stringify(input, null, 2);
  try {
    return JSON.stringify(JSON.parse(input), null, 2);
  } catch {
    return input;
  }
}

function toolSummary(t) {
  let args = null;
  try {
    args = typeof t.input === 'string' ? JSON.parse(t.input) : t.input;
  } catch {
    /* not JSON */
  }
  const pick = args && typeof args === 'object' ? args.command ?? args.file_path ?? args.path ?? args.pattern ?? args.url ?? args.query ?? args.description : null;
  let s = pick != null ? (Array.isArray(pick) ? pick.join(' ') : String(pick)) : t.file_path || '';
  s = s.replace(/\s+/g, ' ').trim();
  return s.length > 120 ? s.slice(0, 117) + '…' : s;
}

function renderTool(t) {
  const input = prettyInput(t.input);
  const result = t.result == null ? '' : String(t.result);
  const long = isLong(input) || isLong(result) || input.length + result.length > LONG_CHARS;
  const det = h(
    'details',
    { class: `tool${t.is_error ? ' error' : ''}`, testid: 'tool-call' },
    h(
      'summary',
      null,
      h('span', { class: 'tool-name' }, t.name || 'tool'),
      t.category ? h('span', { class: 'badge' }, t.category) : null,
      t.is_error ? h('span', { class: 'badge error', testid: 'tool-error' }, 'error') : null,
      h('span', { class: 'tool-sum' }, toolSummary(t)),
    ),
  );
  const body = () => {
    if (det.dataset.filled) return;
    det.dataset.filled = '1';
    if (t.file_path) det.append(h('div', { class: 'muted file' }, t.file_path));
    if (input) det.append(h('div', { class: 'label' }, 'input'), textBlock(input, 'code', 'Long input'));
    if (result) {
      det.append(h('div', { class: 'label' }, t.is_error ? 'result (error)' : 'result'), textBlock(result, 'code result', 'Long result'));
    } else {
      det.append(h('div', { class: 'muted label' }, 'no result'));
    }
  };
  if (long) det.addEventListener('toggle', () => det.open && body());
  else {
    det.open = true;
    body();
  }
  return det;
}

// ---------------------------------------------------------------------------------------------
// Curation

async function curate(op, value) {
  const d = state.detail;
  if (!d) return;
  const id = d.id;
  const params = { id, op };
  if (value !== undefined) params.value = value;
  let result;
  try {
    result = await call('curate', params);
  } catch (e) {
    flashError(`${op} failed: ${e.message}`);
    return;
  }
  if (result?.changed) sync.editGen++;
  refreshPendingNote();
  let fresh = null;
  try {
    fresh = await call('session', { id });
  } catch (e) {
    console.warn('session after edit:', e.message);
  }
  if (fresh) {
    noteConflicts(fresh);
    updateSummary(fresh);
    if (state.detail?.id === id) {
      // The field this edit consumed starts afresh; anything else being typed is kept.
      const restore = keepHeaderInputs(state.detail, { rename: 'rename', tag: 'tag', note: 'note' }[op]);
      state.detail = fresh;
      const head = $('transcript-head');
      if (head) head.replaceWith(renderTranscriptHeader(fresh));
      restore();
      if (op === 'pin' || op === 'unpin') updatePins(fresh);
    }
  }
  if (result?.changed) syncSoon();
}

async function curateFromList(id, op) {
  try {
    const result = await call('curate', { id, op });
    if (result?.changed) sync.editGen++;
    refreshPendingNote();
    const s = state.sessions.find((x) => x.id === id);
    if (s && (op === 'star' || op === 'unstar')) s.starred = op === 'star';
    renderList();
    if (result?.changed) syncSoon();
  } catch (e) {
    flashError(`${op} failed: ${e.message}`);
  }
}

function updateSummary(fresh) {
  const i = state.sessions.findIndex((s) => s.id === fresh.id);
  const inView = !!fresh.trashed === !!state.filters.trashed;
  const summary = { ...fresh };
  for (const k of ['session', 'usage_events', 'pins', 'messages', 'conflicts']) delete summary[k];
  if (i >= 0 && inView) state.sessions[i] = summary;
  else if (i >= 0) state.sessions.splice(i, 1);
  else if (inView) state.sessions.push(summary);
  fillFilterOptions();
}

function updatePins(d) {
  const pins = new Map((d.pins || []).map((p) => [p.ordinal, p]));
  for (const el of $('view-transcript').querySelectorAll('[data-testid="message"]')) {
    const ord = Number(el.dataset.ordinal);
    const want = pins.has(ord);
    if (String(want) !== el.dataset.pinned) {
      const m = (d.messages || []).find((x) => x.ordinal === ord);
      if (m) el.replaceWith(renderMessage(m, pins.get(ord)));
    }
  }
}

function flashError(text) {
  setStatus(text, 'error');
}

// ---------------------------------------------------------------------------------------------
// Machines

async function renderMachines() {
  const view = $('view-machines');
  let m;
  try {
    [m, state.info] = await Promise.all([call('machines'), call('info')]);
  } catch (e) {
    replace(view, h('p', { class: 'error-text' }, `The machines cannot be read: ${e.message}`));
    return;
  }
  if (state.route.view !== 'machines') return;
  const info = state.info;
  const problems = m.problems || [];
  const last = info.last_sync;
  replace(view, 
    h('h2', null, 'Machines'),
    h(
      'table',
      { class: 'grid' },
      h('thead', null, h('tr', null, h('th', null, 'Origin'), h('th', { class: 'num' }, 'Sessions'), h('th', { class: 'num' }, 'Messages'), h('th', { class: 'num' }, 'Checkpoint'), h('th', null, 'Last edit published'))),
      h(
        'tbody',
        null,
        (m.origins || []).map((o) =>
          h(
            'tr',
            { testid: 'origin-row', dataset: { origin: o.origin } },
            h('td', null, o.origin, o.origin === info.origin ? h('span', { class: 'badge' }, 'this browser') : null),
            h('td', { class: 'num' }, String(o.sessions)),
            h('td', { class: 'num' }, String(o.messages)),
            h('td', { class: 'num', title: 'the newest checkpoint of this machine imported here' }, o.checkpoint == null ? '–' : `#${o.checkpoint}`),
            h('td', null, o.last_edit_ms == null ? '–' : `${fmtTime(o.last_edit_ms)} (${fmtAgo(o.last_edit_ms)})`),
          ),
        ),
      ),
    ),
    (m.origins || []).length ? null : h('p', { class: 'muted' }, 'No machine has published anything here yet.'),
    h(
      'dl',
      { class: 'meta wide' },
      meta('this browser', info.origin),
      meta('storage', info.storage === 'opfs' ? 'kept in this browser (OPFS)' : 'memory only: lost when the page closes'),
      meta('conflicts', String(m.conflicts ?? 0)),
      meta('local edits not yet published', String(pendingEdits())),
      meta('last sync', last ? `${fmtTime(last.finished_ms)} (${fmtAgo(last.finished_ms)})` : 'never'),
      last?.report ? meta('last result', describeReport(last.report)) : null,
      sync.lastError ? meta('last error', sync.lastError) : null,
      info.settings ? meta('bucket', `${info.settings.endpoint || 'AWS'} · ${info.settings.bucket}${info.settings.prefix ? '/' + info.settings.prefix : ''}`) : null,
    ),
    h('h3', null, `Problems (${problems.length})`),
    problems.length
      ? h(
          'table',
          { class: 'grid problems' },
          h(
            'thead',
            null,
            h('tr', null, h('th', null, 'State'), h('th', null, 'Class'), h('th', null, 'Key'), h('th', null, 'Reason'), h('th', null, 'Last seen')),
          ),
          h(
            'tbody',
            null,
            problems.map((p) =>
              h(
                'tr',
                { testid: 'problem-row', class: `state-${p.state}`, dataset: { key: p.key } },
                h('td', null, p.state),
                h('td', null, p.class),
                h('td', { class: 'key' }, p.key),
                h('td', null, p.reason),
                h('td', { class: 'time', title: `first seen ${fmtTime(p.first_seen_ms)}` }, fmtTime(p.last_seen_ms)),
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'None: every artifact read so far verified.'),
    h(
      'p',
      { class: 'muted' },
      'Deferred items are expected to resolve on a later sync; quarantined ones are damaged copies that need a good copy in the bucket.',
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Settings

function renderSettings() {
  const form = $('connect-form');
  const s = state.info?.settings;
  const set = (name, v) => {
    form.elements[name].value = v ?? '';
  };
  if (s) {
    set('endpoint', s.endpoint);
    set('region', s.region || 'us-east-1');
    set('bucket', s.bucket);
    set('prefix', s.prefix);
    set('access_key_id', s.access_key_id);
  }
  const prefill = parseRoute().prefill || {};
  for (const name of ['endpoint', 'region', 'bucket', 'prefix', 'access_key_id']) {
    if (prefill[name] != null) set(name, prefill[name]);
  }
  set('secret_access_key', '');
  form.elements.secret_access_key.placeholder = s?.has_secret ? 'stored (leave empty to keep it)' : '';
  $('this-browser').textContent = state.info
    ? `This browser is machine ${state.info.origin}; its archive is ${state.info.storage === 'opfs' ? 'kept in the browser (OPFS)' : 'in memory only (no OPFS here): it is lost when the page closes'}.`
    : '';
  $('connect-error').textContent = '';
}

async function onConnect(e) {
  e.preventDefault();
  const form = $('connect-form');
  const f = form.elements;
  const params = {
    endpoint: f.endpoint.value.trim().replace(/\/+$/, ''),
    region: f.region.value.trim() || 'us-east-1',
    bucket: f.bucket.value.trim(),
    prefix: f.prefix.value.trim().replace(/^\/+|\/+$/g, ''),
    access_key_id: f.access_key_id.value.trim(),
    secret_access_key: f.secret_access_key.value,
    session_token: f.session_token.value.trim(),
  };
  const button = form.querySelector('[data-testid="connect"]');
  button.disabled = true;
  $('connect-error').textContent = '';
  try {
    state.info = await call('connect', params);
  } catch (err) {
    $('connect-error').textContent = err.message;
    button.disabled = false;
    return;
  }
  button.disabled = false;
  f.secret_access_key.value = '';
  f.session_token.value = '';
  $('sync-now').hidden = false;
  history.replaceState({ depth: 0 }, '', '#/');
  await loadSessions();
  await onRoute();
  runSync();
}

// ---------------------------------------------------------------------------------------------
// Events

function wire() {
  window.addEventListener('popstate', onRoute);
  // Links inside the app navigate through go(), so that Escape/back stay in the app.
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="#"]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    go(a.getAttribute('href'));
  });
  $('connect-form').addEventListener('submit', onConnect);
  $('sync-now').addEventListener('click', () => runSync());

  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(searchTimer);
    startSearch($('search-input').value, true);
  });
  $('search-input').addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = $('search-input').value;
    searchTimer = setTimeout(() => startSearch(q, false), q.trim().length >= 2 ? 250 : 600);
  });

  const f = state.filters;
  const refilter = () => {
    state.sel.list = 0;
    state.showAll = false;
    renderList();
  };
  $('f-agent').addEventListener('change', (e) => ((f.agent = e.target.value), refilter()));
  $('f-origin').addEventListener('change', (e) => ((f.origin = e.target.value), refilter()));
  $('f-tag').addEventListener('change', (e) => ((f.tag = e.target.value), refilter()));
  $('f-starred').addEventListener('change', (e) => ((f.starred = e.target.checked), refilter()));
  $('f-text').addEventListener('input', (e) => ((f.text = e.target.value), refilter()));
  $('f-trashed').addEventListener('change', async (e) => {
    f.trashed = e.target.checked;
    state.sel.list = 0;
    await loadSessions();
  });
  $('list-more-btn').addEventListener('click', () => ((state.showAll = true), renderList()));

  document.querySelector('#session-table thead').addEventListener('click', (e) => {
    const th = e.target.closest('th[data-sort]');
    if (!th) return;
    const key = th.dataset.sort;
    if (state.sort.key === key) state.sort.dir = -state.sort.dir;
    else state.sort = { key, dir: ['started_ms', 'message_count', 'starred'].includes(key) ? -1 : 1 };
    renderList();
  });

  $('session-rows').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (!tr) return;
    const starBtn = e.target.closest('[data-action="star"]');
    if (starBtn) {
      const s = state.sessions.find((x) => x.id === tr.dataset.id);
      curateFromList(tr.dataset.id, s?.starred ? 'unstar' : 'star');
      return;
    }
    state.sel.list = Number(tr.dataset.index) || 0;
    go(sessionHash(tr.dataset.id));
  });

  document.addEventListener('keydown', onKey);
  window.addEventListener('online', () => runSync());
  // Keep up with the other machines while the page is open and visible.
  setInterval(() => {
    if (document.visibilityState === 'visible' && hasSettings() && !sync.running) runSync();
  }, 5 * 60_000);
  document.addEventListener('visibilitychange', () => {
    // Catch up after the tab was in the background for a while.
    if (document.visibilityState === 'visible' && hasSettings() && !sync.running) {
      const last = state.info?.last_sync?.finished_ms || 0;
      if (Date.now() - last > 5 * 60_000) runSync();
    }
  });
}

function startSearch(q, force) {
  if (!q.trim() && !force) {
    if (state.route.view === 'search') back();
    return;
  }
  const hash = `#/search?q=${encodeURIComponent(q)}`;
  if (state.route.view === 'search') {
    history.replaceState(history.state, '', hash);
    state.route = { view: 'search', query: q };
    runSearch(q);
  } else {
    go(hash);
  }
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  if (typing) {
    if (e.key === 'Escape') {
      if (t === $('search-input')) {
        t.value = '';
        if (state.route.view === 'search') back();
      }
      t.blur();
      e.preventDefault();
    } else if (t === $('search-input') && (e.key === 'ArrowDown' || e.key === 'ArrowUp') && state.route.view === 'search') {
      e.preventDefault();
      t.blur();
      moveSelection(e.key === 'ArrowDown' ? 0 : -1);
    }
    return;
  }
  const listy = state.route.view === 'list' || state.route.view === 'search';
  switch (e.key) {
    case '/':
      e.preventDefault();
      $('search-input').focus();
      $('search-input').select();
      break;
    case 'j':
    case 'ArrowDown':
      if (listy) {
        e.preventDefault();
        moveSelection(1);
      }
      break;
    case 'k':
    case 'ArrowUp':
      if (listy) {
        e.preventDefault();
        moveSelection(-1);
      }
      break;
    case 'Enter':
      if (listy && !(t instanceof HTMLAnchorElement || t instanceof HTMLButtonElement)) {
        e.preventDefault();
        openSelected();
      }
      break;
    case 'Escape':
      e.preventDefault();
      back();
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Service worker: the app shell opens offline after the first visit.

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(new URL('./sw.js', import.meta.url), { scope: './' }).catch((e) => {
    console.warn('agentsync: no offline copy of the page (service worker):', e.message);
  });
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  wire();
  registerServiceWorker();
  let opened;
  try {
    opened = await ready;
  } catch (e) {
    showView('fatal');
    $('fatal-text').textContent = e.message;
    setStatus(`The archive could not be opened: ${e.message}`, 'error');
    return;
  }
  hideProgress(); // an upgrade's, if there was one
  state.info = opened.info;
  $('storage-badge').hidden = state.info?.storage !== 'memory';
  if (!hasSettings()) {
    setStatus('Not connected: enter the bucket’s settings to sync.', 'idle');
    if (parseRoute().view !== 'settings') {
      // Show what is stored anyway; the form is one click away.
      await loadSessions();
      if (!hasLocalData()) {
        history.replaceState({ depth: 0 }, '', '#/settings');
      }
    }
    await onRoute();
    return;
  }
  $('sync-now').hidden = false;
  setStatus('Local archive', 'local');
  await loadSessions();
  await onRoute();
  performance.mark('agentsync-listed');
  runSync();
}

start();
