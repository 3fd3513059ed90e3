// The rampart dashboard. Plain browser JavaScript (no build step, no framework). Every value from
// the hub goes into the page as text (textContent), never as markup: ban reasons and rule names
// can come from attackers' log lines.

const PAGE_SIZE = 25;
const STATUS_EVERY_MS = 10_000;
const TIMELINE_MIN_GAP_MS = 5_000;

const $ = (id) => document.getElementById(id);

const state = {
  csrf: '',
  role: '',
  /** Cursors of the pages before the one shown; the last one is the current page's. */
  cursors: [undefined],
  next: null,
  filters: { target: '', origin: '', rule: '' },
  minutes: 180,
  events: undefined,
  timers: [],
  timelineAt: 0,
  timelineTimer: undefined,
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['x-rampart-csrf'] = state.csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { error: text };
  }
  if (res.status === 401 && path !== '/v1/session') {
    showLogin('Your session has ended; sign in again.');
  }
  if (!res.ok) throw new ApiError(res.status, json.error || `${res.status} ${res.statusText}`);
  return json;
}

// ---- formatting --------------------------------------------------------------------------------

const numberFormat = new Intl.NumberFormat('en-US');
const fmtNum = (n) => numberFormat.format(n);

function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  return relative(ms - Date.now());
}

function relative(delta) {
  const future = delta > 0;
  const s = Math.round(Math.abs(delta) / 1000);
  if (s < 5) return future ? 'in a moment' : 'just now';
  const m = Math.round(s / 60);
  const h = Math.round(m / 60);
  const text = s < 60 ? `${s} s` : m < 60 ? `${m} min` : h < 48 ? `${h} h` : `${Math.round(h / 24)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const stamp = (ms) => new Date(ms).toLocaleString();

function el(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  if (opts.text !== undefined) node.textContent = String(opts.text);
  if (opts.cls) node.className = opts.cls;
  if (opts.title) node.title = opts.title;
  for (const c of children) node.append(c);
  return node;
}

function emptyRow(tbody, cols, text) {
  tbody.replaceChildren(el('tr', {}, [Object.assign(el('td', { cls: 'empty', text }), { colSpan: cols })]));
}

// ---- login -------------------------------------------------------------------------------------

function showLogin(message = '') {
  stopLive();
  state.csrf = '';
  $('app-view').classList.add('hidden');
  $('session').classList.add('hidden');
  $('login-view').classList.remove('hidden');
  $('login-error').textContent = message;
  $('token').focus();
}

function showApp(session) {
  state.csrf = session.csrf;
  state.role = session.role;
  document.body.classList.toggle('viewer', session.role !== 'admin');
  $('role').textContent = session.role;
  $('role').className = `badge ${session.role}`;
  $('login-view').classList.add('hidden');
  $('session').classList.remove('hidden');
  $('app-view').classList.remove('hidden');
  startLive();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('token');
  try {
    const session = await api('POST', '/v1/session', { token: input.value });
    input.value = '';
    showApp(session);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
});

$('logout').addEventListener('click', async () => {
  await api('DELETE', '/v1/session').catch(() => undefined);
  showLogin('Signed out.');
});

// ---- live updates --------------------------------------------------------------------------------

function startLive() {
  stopLive();
  refreshAll();
  const events = new EventSource('/v1/events');
  state.events = events;
  events.addEventListener('open', () => setLive(true));
  events.addEventListener('error', () => setLive(false));
  events.addEventListener('head', () => {
    setLive(true);
    refreshBans();
    refreshStatus();
    refreshTimelineSoon();
  });
  // Node lag and last contact move without new decisions; the status call is cheap.
  state.timers.push(setInterval(refreshStatus, STATUS_EVERY_MS));
  state.timers.push(setInterval(refreshTimelineSoon, 60_000));
}

function stopLive() {
  state.events?.close();
  state.events = undefined;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  setLive(false);
}

function setLive(on) {
  const live = $('live');
  live.classList.toggle('on', on);
  live.textContent = on ? 'live' : 'reconnecting';
}

function refreshAll() {
  refreshStatus();
  refreshBans();
  refreshTimeline();
  refreshAllowlist();
}

function report(where, err) {
  if (err instanceof ApiError && err.status === 401) return;
  $(where).textContent = err.message;
}

// ---- status, nodes, counters -------------------------------------------------------------------

async function refreshStatus() {
  let s;
  let nodes;
  try {
    [s, { nodes }] = await Promise.all([api('GET', '/v1/status'), api('GET', '/v1/nodes')]);
  } catch (err) {
    return report('bans-error', err);
  }
  $('fleet').textContent = `fleet ${s.fleet}`;
  $('stat-active').textContent = fmtNum(s.decisions.active);
  $('stat-family').textContent =
    `IPv4 ${fmtNum(s.decisions.byFamily[4] ?? 0)} · IPv6 ${fmtNum(s.decisions.byFamily[6] ?? 0)}`;
  $('stat-head').textContent = fmtNum(s.head);
  $('stat-nodes').textContent = fmtNum(s.nodes.length);
  const maxLag = s.nodes.reduce((m, n) => Math.max(m, n.lag), 0);
  $('stat-lag').textContent = s.nodes.length ? `max lag ${fmtNum(maxLag)}` : 'none enrolled';
  $('stat-bus').textContent = `${s.bus.type} · ${s.bus.connected === false ? 'down' : 'up'}`;
  $('stat-bus').classList.toggle('down', s.bus.connected === false);
  $('stat-bus-url').textContent = s.bus.url;
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  $('stat-dropped').textContent = fmtNum(dropped);
  const reports = Object.values(s.reports).reduce((a, b) => a + b, 0);
  $('stat-reports').textContent = `of ${fmtNum(reports)} reports`;
  fillFilter($('origin'), 'All origins', s.decisions.byOrigin);
  fillFilter($('rule'), 'All rules', s.decisions.byRule ?? {});
  renderCounters(s);
  renderNodes(nodes, s.nodes);
}

function fillFilter(select, all, counts) {
  const keep = select.value;
  const names = Object.keys(counts).sort();
  if (keep && !names.includes(keep)) names.unshift(keep);
  const options = [el('option', { text: all })];
  options[0].value = '';
  for (const name of names) {
    const o = el('option', { text: counts[name] === undefined ? name : `${name} (${fmtNum(counts[name])})` });
    o.value = name;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.value = keep;
}

function renderCounters(s) {
  const rows = [];
  const section = (title) =>
    rows.push(el('tr', { cls: 'section' }, [Object.assign(el('td', { text: title }), { colSpan: 2 })]));
  const row = (k, v) => rows.push(el('tr', {}, [el('td', { text: k }), el('td', { text: v })]));
  section('Bus');
  row('transport', s.bus.type);
  row('connected', s.bus.connected === false ? 'no' : 'yes');
  section('Reports by result');
  const reports = Object.entries(s.reports).sort((a, b) => b[1] - a[1]);
  if (!reports.length) row('none yet', '0');
  for (const [k, v] of reports) row(k, fmtNum(v));
  section('Dropped by reason');
  const dropped = Object.entries(s.dropped).sort((a, b) => b[1] - a[1]);
  if (!dropped.length) row('none', '0');
  for (const [k, v] of dropped) row(k, fmtNum(v));
  $('counters').tBodies[0].replaceChildren(...rows);
}

/** `nodes` from /v1/nodes (every state), `live` from /v1/status (lag of enrolled ones). */
function renderNodes(nodes, live) {
  const lagOf = new Map(live.map((n) => [n.name, n.lag]));
  const tbody = $('nodes').tBodies[0];
  const shown = nodes.filter((n) => n.state !== 'removed');
  if (!shown.length) return emptyRow(tbody, 5, 'No nodes yet: rampart nodes add NAME');
  tbody.replaceChildren(
    ...shown.map((n) => {
      const lag = lagOf.get(n.name);
      const stale = n.lastSeen === null || Date.now() - n.lastSeen > 120_000;
      return el('tr', {}, [
        el('td', { text: n.name, cls: 'mono' }),
        el('td', {}, [
          el('span', { cls: `tag ${n.state === 'enrolled' ? (stale ? 'warn' : 'ok') : ''}`, text: n.state }),
        ]),
        el('td', { cls: 'num' }, [
          el('span', { cls: `tag ${lag ? 'warn' : 'ok'}`, text: lag === undefined ? '–' : fmtNum(lag) }),
        ]),
        el('td', { text: ago(n.lastSeen), title: n.lastSeen ? stamp(n.lastSeen) : '' }),
        el('td', { text: n.version ?? '–', cls: 'muted' }),
      ]);
    }),
  );
}

// ---- bans --------------------------------------------------------------------------------------

function bansQuery() {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) q.set('cursor', cursor);
  for (const [k, v] of Object.entries(state.filters)) if (v) q.set(k, v);
  return q;
}

let bansSeq = 0;
async function refreshBans() {
  const mine = ++bansSeq;
  let page;
  try {
    page = await api('GET', `/v1/bans?${bansQuery()}`);
  } catch (err) {
    if (mine === bansSeq) report('bans-error', err);
    return;
  }
  // An older answer arriving after a newer one must not overwrite it.
  if (mine !== bansSeq) return;
  $('bans-error').textContent = '';
  state.next = page.next;
  const first = (state.cursors.length - 1) * PAGE_SIZE;
  $('bans-total').textContent = `${fmtNum(page.total)} matching`;
  $('page-info').textContent = page.items.length
    ? `${fmtNum(first + 1)}–${fmtNum(first + page.items.length)} of ${fmtNum(page.total)}`
    : '';
  $('prev').disabled = state.cursors.length <= 1;
  $('next').disabled = page.next === null;
  const tbody = $('bans').tBodies[0];
  if (!page.items.length) {
    return emptyRow(
      tbody,
      8,
      state.filters.target ? `Nothing banned overlaps ${state.filters.target}` : 'No bans match',
    );
  }
  tbody.replaceChildren(...page.items.map(banRow));
}

function banRow(d) {
  const unban = el('button', { cls: 'row-action', text: 'Unban', title: `lift the ban on ${d.target}` });
  unban.type = 'button';
  unban.dataset.target = d.target;
  unban.addEventListener('click', async () => {
    unban.disabled = true;
    try {
      await api('DELETE', `/v1/decisions/${encodeURIComponent(d.target)}?set=${encodeURIComponent(d.set)}`);
      refreshBans();
      refreshStatus();
    } catch (err) {
      unban.disabled = false;
      report('bans-error', err);
    }
  });
  const tr = el('tr', {}, [
    el('td', { text: d.target, cls: 'target' }),
    el('td', { text: d.origin }),
    el('td', {}, [el('span', { cls: 'tag', text: d.rule })]),
    el('td', { text: d.reason, cls: 'reason', title: d.reason }),
    el('td', { text: d.set, cls: 'muted' }),
    el('td', { text: ago(d.createdAt), title: stamp(d.createdAt) }),
    el('td', {
      text: d.expiresAt === null ? 'never' : relative(d.expiresAt - Date.now()),
      title: d.expiresAt ? stamp(d.expiresAt) : 'permanent',
    }),
    el('td', { cls: 'act admin-only' }, [unban]),
  ]);
  tr.dataset.target = d.target;
  return tr;
}

$('filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.filters = { target: $('search').value.trim(), origin: $('origin').value, rule: $('rule').value };
  state.cursors = [undefined];
  refreshBans();
});
for (const id of ['origin', 'rule']) {
  $(id).addEventListener('change', () => $('filters').requestSubmit());
}
$('search').addEventListener('search', () => $('filters').requestSubmit());

$('next').addEventListener('click', () => {
  if (state.next === null) return;
  state.cursors.push(state.next);
  refreshBans();
});
$('prev').addEventListener('click', () => {
  if (state.cursors.length > 1) state.cursors.pop();
  refreshBans();
});

/**
 * Posts a form's non-empty fields (named by the inputs' `name`) as JSON; on success clears it
 * and calls `after`, on failure shows the hub's error in `errorId`.
 */
function postForm(formId, path, errorId, after) {
  const form = $(formId);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const input of form.querySelectorAll('input[name]')) {
      const v = input.value.trim();
      if (v) body[input.name] = v;
    }
    try {
      await api('POST', path, body);
      form.reset();
      $(errorId).textContent = '';
      after();
    } catch (err) {
      report(errorId, err);
    }
  });
}

postForm('ban-form', '/v1/decisions', 'bans-error', () => {
  refreshBans();
  refreshStatus();
});

// ---- timeline ----------------------------------------------------------------------------------

function refreshTimelineSoon() {
  const wait = state.timelineAt + TIMELINE_MIN_GAP_MS - Date.now();
  if (wait <= 0) return refreshTimeline();
  if (!state.timelineTimer) {
    state.timelineTimer = setTimeout(() => {
      state.timelineTimer = undefined;
      refreshTimeline();
    }, wait);
  }
}

async function refreshTimeline() {
  state.timelineAt = Date.now();
  try {
    drawChart(await api('GET', `/v1/timeline?minutes=${state.minutes}`));
  } catch (err) {
    report('bans-error', err);
  }
}

for (const b of $('range').querySelectorAll('button')) {
  b.addEventListener('click', () => {
    for (const o of $('range').querySelectorAll('button')) o.classList.toggle('on', o === b);
    state.minutes = Number(b.dataset.minutes);
    refreshTimeline();
  });
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A top for the y axis: four grid steps of 1, 2 or 5 times a power of ten. */
function niceMax(n) {
  const quarter = Math.max(1, n / 4);
  const p = 10 ** Math.floor(Math.log10(quarter));
  for (const m of [1, 2, 5, 10]) if (m * p >= quarter) return 4 * m * p;
  return 40 * p;
}

function drawChart(t) {
  const box = $('chart');
  const W = Math.max(box.clientWidth, 300);
  const H = box.clientHeight || 190;
  const left = 44;
  const right = 8;
  const top = 8;
  const bottom = 22;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(...t.counts, 0));
  const total = t.counts.reduce((a, b) => a + b, 0);
  const peak = Math.max(...t.counts, 0);
  $('chart-caption').textContent =
    `bans per minute · ${fmtNum(total)} in the last ${t.counts.length >= 60 ? `${t.counts.length / 60} h` : `${t.counts.length} min`} · peak ${fmtNum(peak)}/min`;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'bans per minute' });
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    root.append(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'grid' }));
    root.append(
      svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmtNum((max * i) / 4)),
    );
  }
  const n = t.counts.length;
  const step = plotW / n;
  const barW = Math.max(1, step - (step > 4 ? 1 : 0));
  t.counts.forEach((c, i) => {
    if (c === 0) return;
    const h = Math.max(1, (plotH * c) / max);
    const bar = svg('rect', { x: left + i * step, y: top + plotH - h, width: barW, height: h, class: 'bar' });
    bar.append(svg('title', {}, `${clock(t.from + i * t.bucketMs)}: ${fmtNum(c)} bans`));
    root.append(bar);
  });
  // A time label about every 110 px, on whole quarter hours where the window allows.
  const labelEvery = Math.max(1, Math.ceil(((110 / plotW) * n) / 15) * 15);
  for (let i = 0; i < n; i++) {
    const at = t.from + i * t.bucketMs;
    const x = left + i * step;
    // A label cut by the edge reads as a different time.
    if (Math.floor(at / 60_000) % labelEvery !== 0 || x > W - right - 30) continue;
    root.append(svg('text', { x, y: H - 6, 'text-anchor': 'middle', class: 'axis' }, clock(at)));
  }
  box.replaceChildren(root);
}

// ---- allowlist ---------------------------------------------------------------------------------

async function refreshAllowlist() {
  let entries;
  try {
    ({ entries } = await api('GET', '/v1/allowlist'));
  } catch (err) {
    return report('allow-error', err);
  }
  const tbody = $('allowlist').tBodies[0];
  if (!entries.length) return emptyRow(tbody, 4, 'Empty');
  tbody.replaceChildren(
    ...entries.map((e) => {
      const remove = el('button', { cls: 'row-action', text: 'Remove' });
      remove.type = 'button';
      remove.addEventListener('click', async () => {
        try {
          await api('DELETE', `/v1/allowlist?cidr=${encodeURIComponent(e.cidr)}`);
          refreshAllowlist();
        } catch (err) {
          report('allow-error', err);
        }
      });
      return el('tr', {}, [
        el('td', { text: e.cidr, cls: 'target' }),
        el('td', { text: e.comment, cls: 'reason', title: e.comment }),
        el('td', { text: ago(e.createdAt), title: stamp(e.createdAt) }),
        el('td', { cls: 'act admin-only' }, [remove]),
      ]);
    }),
  );
}

postForm('allow-form', '/v1/allowlist', 'allow-error', () => {
  refreshAllowlist();
  refreshBans();
});

window.addEventListener('resize', () => refreshTimelineSoon());

// ---- start -------------------------------------------------------------------------------------

api('GET', '/v1/session')
  .then(showApp)
  .catch(() => showLogin());
