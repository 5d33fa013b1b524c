// The list of a server's apps: rendered by the daemon, shown once the visitor may see it
// (no token, or a session); logging in here reloads the list.
'use strict';

const $ = (id) => document.getElementById(id);

async function call(method, path, body) {
  try {
    const res = await fetch(path, {
      method, credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  } catch (e) {
    return { status: 0, body: { error: 'the daemon cannot be reached' } };
  }
}

async function start() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await call('POST', '/ui/login', { token: $('token').value });
    $('token').value = '';
    if (r.status !== 200) { $('login-error').textContent = r.body.error || `HTTP ${r.status}`; return; }
    location.reload();
  });
  const s = await call('GET', '/ui/session');
  if (s.status !== 200) { $('connection').textContent = 'the daemon cannot be reached'; return; }
  if (s.body.token_required && !s.body.logged_in) {
    $('apps').hidden = true;
    $('login').hidden = false;
    $('connection').textContent = 'not logged in';
    $('token').focus();
  }
}

start();
