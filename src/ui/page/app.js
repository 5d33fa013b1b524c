// The dashboard: reads the daemon's API, follows its events and the live log over
// Server-Sent Events, and deploys or rolls back after asking. Everything shown is set
// with textContent: commit subjects and log lines are never markup.
'use strict';

const $ = (id) => document.getElementById(id);
// One of several apps: its API routes are under /apps/NAME ("" for the only app).
const BASE = document.body.dataset.base || '';
const state = { csrf: '', status: null, historyLoaded: 0, events: null, log: null, logSlot: '', commits: new Map() };

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (state.csrf) headers['X-CSRF-Token'] = state.csrf;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (e) {
    return { status: 0, body: { error: 'the daemon cannot be reached' } };
  }
  let json = {};
  try { json = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 401 && path !== '/ui/login') showLogin('Your session ended; log in again.');
  return { status: res.status, body: json };
}

function short(hash) { return hash ? hash.slice(0, 12) : '—'; }

function duration(ms) {
  if (ms === undefined || ms === null) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function since(rfc3339) {
  if (!rfc3339) return '—';
  let s = Math.max(0, Math.floor((Date.now() - Date.parse(rfc3339)) / 1000));
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (s >= size) { parts.push(`${Math.floor(s / size)}${unit}`); s %= size; }
  }
  parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ');
}

function field(card, name, text, cls) {
  const dd = card.querySelector(`[data-field="${name}"]`);
  dd.textContent = text;
  dd.className = cls || '';
}

async function commitInfo(hash) {
  if (!hash) return null;
  if (!state.commits.has(hash)) {
    const r = await api('GET', `${BASE}/commits/${hash}`);
    state.commits.set(hash, r.status === 200 ? r.body : { subject: '(not in the repository)', author: '' });
  }
  return state.commits.get(hash);
}

async function showCard(card, hash, slot) {
  field(card, 'commit', short(hash));
  field(card, 'slot', slot || '—');
  const info = await commitInfo(hash);
  field(card, 'subject', info ? info.subject : '—');
  field(card, 'author', info ? info.author : '—');
}

async function refreshStatus() {
  const r = await api('GET', `${BASE}/status`);
  if (r.status !== 200) return;
  const s = r.body;
  state.status = s;
  const live = $('live'), previous = $('previous');
  await showCard(live, s.live_commit, s.live_slot);
  field(live, 'health', s.live_commit ? (s.healthy ? 'healthy' : 'unhealthy') : '—',
        s.live_commit ? (s.healthy ? 'good' : 'bad') : '');
  field(live, 'uptime', since(s.live_since));
  const workers = s.workers || [];
  field(live, 'workers', workers.length === 0 ? 'none' : workers.map((w) =>
    `${w.name}: ${w.pid ? `running (pid ${w.pid})` : `down (${w.last_exit}), starting again`}` +
    (w.restarts ? `, restarted ${w.restarts}×` : '')).join('; '),
  workers.some((w) => !w.pid) ? 'bad' : '');
  await showCard(previous, s.previous_commit, s.previous_slot);
  field(previous, 'standby', s.standby ? `${s.standby} until ${s.standby_until}` : 'none');
  if (s.operation) {
    const of = s.operation_commit ? ` of ${short(s.operation_commit)}` : '';
    $('operation').textContent = `${s.operation}${of} running: ${s.stage || 'starting'}`;
    // A tab opened mid-operation: the stages it missed, from /status.
    if ($('stages').children.length === 0) for (const st of s.operation_stages || []) stageItem(st);
  }
  const down = s.maintenance;
  field(live, 'maintenance', down ? `on since ${down.since} (every request gets 503)` : 'off', down ? 'bad' : '');
  $('maintenance').textContent = down ? 'Maintenance off…' : 'Maintenance on…';
  const c = s.canary;
  field(live, 'canary', c ? `${short(c.commit)} (slot ${c.slot}) gets ${c.percent}% of new visitors since ${c.since}: `
    + `${c.requests_new} requests to it, ${c.requests_old} to live` : 'none');
  $('promote').hidden = !c;
  $('rollback').textContent = c ? 'End the canary…' : 'Roll back…';
  const rb = $('rollback');
  rb.disabled = !s.can_roll_back && !c;
  rb.title = s.can_roll_back ? '' : (s.previous_replaced
    ? `Nothing to roll back to: the last deploy used the slot of ${short(s.previous_replaced)}.`
    : 'Nothing to roll back to yet.');
  $('rollback-note').textContent = s.can_roll_back || !s.live_commit ? '' : rb.title;
  if (s.live_slot && s.live_slot !== state.logSlot) followLog(s.live_slot);
}

function historyRow(e) {
  const tr = document.createElement('tr');
  const cells = [
    (e.time || '').replace('T', ' ').replace(/\..*|Z$/, ''),
    e.reason ? `${e.action} (${e.reason})` : e.action,
    short(e.commit),
    e.slot || '',
    e.result === 'ok' ? 'ok' : `${e.result}${e.stage ? ' at ' + e.stage : ''}`,
    duration(e.duration_ms),
  ];
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.append(text);
    if (i === 2) td.className = 'hash';
    if (i === 4) {
      td.className = e.result === 'ok' ? 'good' : 'bad';
      if (e.error) {  // shown, not hidden in a tooltip: its first line, the whole on hover
        const why = document.createElement('div');
        why.className = 'error-detail';
        why.textContent = e.error.split('\n')[0];
        td.title = e.error;
        td.appendChild(why);
      }
    }
    tr.appendChild(td);
  });
  return tr;
}

async function loadHistory(more) {
  const body = $('history').querySelector('tbody');
  const skip = more ? state.historyLoaded : 0;
  const r = await api('GET', `${BASE}/history?limit=20&skip=${skip}`);
  if (r.status !== 200) return;
  if (!more) { body.replaceChildren(); state.historyLoaded = 0; }
  for (const e of r.body.entries) body.appendChild(historyRow(e));
  state.historyLoaded += r.body.entries.length;
  $('older').hidden = r.body.entries.length < 20;
}

async function loadRevisions() {
  const r = await api('GET', `${BASE}/revisions`);
  if (r.status !== 200) return;
  const list = $('revisions');
  list.replaceChildren();
  const add = (value, label) => {
    const o = document.createElement('option');
    o.value = value;
    o.label = label;
    list.appendChild(o);
  };
  for (const b of r.body.branches) add(b, 'branch');
  for (const t of r.body.tags) add(t, 'tag');
  for (const c of r.body.recent) add(c.hash.slice(0, 12), `${c.subject} — ${c.author}`);
}

// --- the running operation, from the event stream ---------------------------------

function stageItem(name) {
  const list = $('stages');
  for (const li of list.children) li.className = 'done';
  const li = document.createElement('li');
  li.textContent = name;
  li.className = 'running';
  li.dataset.stage = name;
  list.appendChild(li);
}

function onEvent(kind, data) {
  switch (kind) {
    case 'stage':
      if (!data.stage) {  // the operation left its last stage; `finished` says how it ended
        for (const li of $('stages').children) li.className = 'done';
        $('operation').textContent = 'Idle.';
        return;
      }
      if (data.stage === 'resolve' || $('stages').children.length === 0 || state.op !== data.op) {
        state.op = data.op;
        $('stages').replaceChildren();
        $('output').replaceChildren();
        $('output').hidden = true;
        $('operation').textContent = `${data.operation || 'operation'} running`;
      }
      stageItem(data.stage);
      $('operation').textContent = `${data.operation || 'operation'} running: ${data.stage}`;
      break;
    case 'started':
      $('operation').textContent = `deploying ${short(data.commit)} to slot ${data.slot}`;
      break;
    case 'output':
      $('output').hidden = false;
      $('output').append(`${data.line}\n`);
      break;
    case 'health': {
      // Refused connections while the app boots are the normal wait, not an error.
      const booting = !data.healthy && /refused/i.test(data.detail || '');
      $('operation').textContent = `health check ${data.attempt}: ` + (data.healthy ? 'healthy'
        : booting ? 'waiting for the app to listen' : data.detail || 'not yet');
      $('operation').className = data.healthy || booting ? '' : 'bad';
      break;
    }
    case 'finished':
      $('operation').className = data.result === 'ok' ? '' : 'bad';
      $('operation').textContent = `${data.action} ${data.result === 'ok' ? 'finished' : data.result}` +
        ` (${short(data.commit)}, ${duration(data.duration_ms)})${data.error ? ': ' + data.error : ''}`;
      for (const li of $('stages').children) li.className = 'done';
      refreshStatus();
      loadHistory(false);
      break;
    case 'app_exited':
    case 'health_changed':
      refreshStatus();
      break;
    case 'gap':
      refreshStatus();
      loadHistory(false);
      break;
  }
}

function followEvents() {
  if (state.events) state.events.close();
  const es = new EventSource(`${BASE}/events`);
  state.events = es;
  es.onopen = () => { $('connection').textContent = 'connected'; refreshStatus(); };
  es.onerror = () => { $('connection').textContent = es.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…'; };
  for (const kind of ['stage', 'started', 'output', 'health', 'finished', 'app_exited', 'health_changed', 'gap']) {
    es.addEventListener(kind, (m) => onEvent(kind, JSON.parse(m.data)));
  }
}

function followLog(slot) {
  if (state.log) state.log.close();
  state.logSlot = slot;
  const pre = $('log');
  pre.replaceChildren();
  const es = new EventSource(`${BASE}/logs?slot=${slot}&tail=100&follow=1`);
  state.log = es;
  es.addEventListener('line', (m) => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(`${m.data}\n`);
    while (pre.childNodes.length > 500) pre.removeChild(pre.firstChild);
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  });
}

// --- asking, then doing ------------------------------------------------------------

function confirmAction(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
    $('confirm-ok').focus();
  });
}

function result(r, what) {
  const out = $('action-result');
  if (r.status === 200) {
    out.className = 'good';
    out.textContent = r.body.canary_ended ? `${what}: the canary ${short(r.body.commit)} ended; everyone is on live`
      : `${what}: ${short(r.body.commit)} is live in slot ${r.body.slot}`;
  } else {
    out.className = 'bad';
    out.textContent = `${what} failed (HTTP ${r.status}): ${r.body.error || 'no reason given'}`;
  }
}

async function deploy(ev) {
  ev.preventDefault();
  const rev = $('revision').value.trim();
  if (!rev || !(await confirmAction(`Deploy ${rev}? It replaces what is live now.`))) return;
  $('action-result').className = '';
  $('action-result').textContent = `deploying ${rev}…`;
  result(await api('POST', `${BASE}/deploy`, { commit: rev }), `deploy of ${rev}`);
}

async function rollback() {
  const s = state.status;
  const to = s && s.previous_commit ? short(s.previous_commit) : 'the previous version';
  const ask = s && s.canary ? `End the canary ${short(s.canary.commit)}? Everyone goes back to live.`
    : `Roll back to ${to}?`;
  if (!(await confirmAction(ask))) return;
  $('action-result').className = '';
  $('action-result').textContent = 'rolling back…';
  result(await api('POST', `${BASE}/rollback`), 'rollback');
}

async function promote() {
  const c = state.status && state.status.canary;
  if (!c || !(await confirmAction(`Make the canary ${short(c.commit)} live for everyone?`))) return;
  $('action-result').className = '';
  $('action-result').textContent = 'promoting…';
  result(await api('POST', `${BASE}/promote`), 'promote');
}

async function maintenance() {
  const on = !(state.status && state.status.maintenance);
  const ask = on ? 'Put the app in maintenance? Every request gets 503 and a "down for maintenance" page until '
    + 'you turn it off; deploys go on.' : 'End maintenance? The app answers requests again.';
  if (!(await confirmAction(ask))) return;
  const r = await api('POST', `${BASE}/maintenance`, { enabled: on });
  const out = $('action-result');
  out.className = r.status === 200 ? 'good' : 'bad';
  out.textContent = r.status === 200 ? `maintenance ${on ? 'on' : 'off'}`
    : `maintenance failed (HTTP ${r.status}): ${r.body.error || 'no reason given'}`;
  await refreshStatus();
}

// --- logging in and out -----------------------------------------------------------

function stopStreams() {
  for (const key of ['events', 'log']) if (state[key]) { state[key].close(); state[key] = null; }
  state.logSlot = '';
}

function showLogin(message) {
  stopStreams();
  state.csrf = '';
  $('dashboard').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('connection').textContent = 'not logged in';
  $('token').focus();
}

function showDashboard(loggedIn) {
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('logout').hidden = !loggedIn;
  followEvents();
  refreshStatus();
  loadHistory(false);
  loadRevisions();
}

async function login(ev) {
  ev.preventDefault();
  const r = await api('POST', '/ui/login', { token: $('token').value });
  $('token').value = '';
  if (r.status !== 200) {
    $('login-error').textContent = r.body.error || `HTTP ${r.status}`;
    return;
  }
  state.csrf = r.body.csrf;
  showDashboard(true);
}

async function logout() {
  await api('POST', '/ui/logout');
  showLogin('Logged out.');
}

async function start() {
  $('login-form').addEventListener('submit', login);
  $('deploy-form').addEventListener('submit', deploy);
  $('rollback').addEventListener('click', rollback);
  $('maintenance').addEventListener('click', maintenance);
  $('promote').addEventListener('click', promote);
  $('older').addEventListener('click', () => loadHistory(true));
  $('logout').addEventListener('click', logout);
  setInterval(() => {
    if (state.status) field($('live'), 'uptime', since(state.status.live_since));
  }, 1000);
  setInterval(() => { if (!$('dashboard').hidden) refreshStatus(); }, 10000);
  const r = await api('GET', '/ui/session');
  if (r.status !== 200) { $('connection').textContent = 'the daemon cannot be reached'; return; }
  if (r.body.token_required && !r.body.logged_in) { showLogin(''); return; }
  state.csrf = r.body.csrf;
  showDashboard(r.body.logged_in);
}

start();
