// Signal console: watch rooms live over the WebSocket, read GET /status and
// send test broadcasts. Plain JavaScript, no framework, and only requests to
// the server that served this page. The protocol (reconnects, resume, token
// refresh, repeats) is the @signal-notify/client package, bundled in
// signal-client.js (make console-bundle). Everything the server sends is
// shown with textContent: no markup is ever built from data.
import { createClient } from './signal-client.js';

{
  const LOG_LIMIT = 500; // frames kept in the log
  const STATUS_EVERY = 5000; // ms between GET /status (and the client list)
  const CLIENTS_PAGE = 20; // clients per page
  const WELCOME = 'signal/system/welcome';
  const CREATED = 'observation/signal/notification/created';
  const UPDATED = 'observation/signal/notification/updated';
  // sessionStorage keys: the tab keeps them, nothing else does.
  const KEY_STORE = 'signal.console.apikey';
  const TOKEN_STORE = 'signal.console.token';

  const $ = (id) => document.getElementById(id);
  // The routes sit next to /console/, whatever prefix a proxy adds.
  const base = new URL('../', location.href);

  // el makes an element whose text, if any, is set as text.
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function now() {
    const d = new Date();
    return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  const store = {
    get(k) { try { return sessionStorage.getItem(k) || ''; } catch { return ''; } },
    set(k, v) { try { if (v) sessionStorage.setItem(k, v); else sessionStorage.removeItem(k); } catch { /* storage off: memory only */ } },
  };

  // apiError turns an error answer into the API's message.
  function apiError(resp, body) {
    const e = body && body.error;
    if (e && e.message) return e.message + ' (' + resp.status + ' ' + e.code + ')';
    return 'HTTP ' + resp.status + ' ' + resp.statusText;
  }

  // --- connection: the @signal-notify/client package (signal-client.js) ---

  const conn = {
    client: null,
    token: '',
    pendingToken: '', // given to the client by Refresh, in use once the server confirms
  };

  function setState(state, text) {
    const s = $('state');
    s.dataset.state = state;
    s.textContent = text || state;
    const live = state === 'connected';
    $('join').disabled = !live;
    $('refresh-token').disabled = !live;
    $('disconnect').disabled = !conn.client;
    for (const b of document.querySelectorAll('#rooms button')) b.disabled = !live;
  }

  function connect(token) {
    disconnect();
    conn.token = token;
    conn.pendingToken = '';
    // The token the operator pasted; Refresh hands over the next one.
    const c = createClient({
      url: base.href,
      token: () => conn.pendingToken || conn.token,
      share: false, // the console watches its own connection
      autoload: false, // it shows frames, not the inbox
    });
    conn.client = c;
    let lastClose = 0;
    c.on('state', (st) => {
      if (conn.client !== c) return;
      if (st === 'live') {
        setState('connected');
        c.inbox.refreshCounts().catch(showCountsError);
      } else if (st === 'connecting') {
        setState('connecting', lastClose ? 'closed (' + lastClose + '), reconnecting…' : 'connecting…');
      } else {
        setState('reconnecting', lastClose ? 'closed (' + lastClose + '), retrying' : 'refused (bad or expired token?), retrying');
      }
      renderRooms();
    });
    c.on('error', (e) => {
      if (conn.client !== c) return;
      if (e.closeCode) lastClose = e.closeCode;
      if (e.closeCode === 4001 || e.code === 'unauthorized') {
        // The token expired without a refresh: a reconnect would be refused.
        disconnect();
        setState('disconnected', e.closeCode === 4001 ? 'token expired (4001): paste a new token' : 'token refused: paste a new token');
      }
    });
    c.on('frame', (f) => { if (conn.client === c) onFrame(f); });
    c.on('repeat', () => { if (conn.client === c) dropped(); });
    c.on('counts', (x) => { if (conn.client === c) showCounts(x); });
    setState('connecting', 'connecting…');
    c.connect();
  }

  function disconnect() {
    const c = conn.client;
    conn.client = null;
    if (c) c.close();
    renderRooms();
    $('client-id').textContent = '–';
    setState('disconnected');
  }

  // tokenExpiry reads a JWT's exp (display only: the server checks it).
  function tokenExpiry(token) {
    try {
      const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return claims.exp ? new Date(claims.exp * 1000).toISOString() : 'never';
    } catch {
      return '?';
    }
  }

  // refreshToken hands the open connection a new token (same subject) before
  // the current one expires; the server answers signal/system/refreshed.
  function refreshToken(token) {
    if (!conn.client) return;
    conn.pendingToken = token;
    conn.client.refreshToken();
  }

  function onFrame(f) {
    const data = f.data;
    switch (f.topic) {
      case WELCOME:
        $('client-id').textContent = (data && data.clientId) || '?';
        $('token-expires').textContent = tokenExpiry(conn.pendingToken || conn.token);
        break;
      case 'signal/system/refreshed':
        // The connection now runs on the token sent with refresh.
        if (conn.pendingToken) {
          conn.token = conn.pendingToken;
          conn.pendingToken = '';
          store.set(TOKEN_STORE, conn.token);
        }
        $('token-expires').textContent = (data && data.expiresAt) || 'never';
        break;
      case UPDATED:
        if (data) applyStates(data);
        break;
    }
    renderRooms();
    logFrame(f);
  }

  // --- inbox states ---

  // stateText names a notification card's states.
  function stateText(ds) {
    const s = [ds.read === 'true' ? 'read' : 'unread'];
    if (ds.read !== 'true' && ds.seen === 'true') s.push('seen');
    if (ds.archived === 'true') s.push('archived');
    if (ds.deleted === 'true') s.push('deleted');
    return s.join(', ');
  }

  // applyStates shows an updated frame's states on the cards it names
  // (every card for an "all" change).
  function applyStates(d) {
    const ids = new Set(Array.isArray(d.ids) ? d.ids.map(String) : []);
    for (const card of document.querySelectorAll('#log li.card')) {
      if (!d.all && !ids.has(card.dataset.id)) continue;
      for (const [field, key] of [['isRead', 'read'], ['isSeen', 'seen'], ['isArchived', 'archived'], ['isDeleted', 'deleted']]) {
        if (typeof d[field] === 'boolean') card.dataset[key] = String(d[field]);
      }
      const dd = card.querySelector('dd.state');
      if (dd) dd.textContent = stateText(card.dataset);
    }
  }

  // showCounts shows the connected recipient's counts, kept by the client.
  function showCounts(c) {
    $('inbox-counts').textContent = c.unread + ' unread, ' + c.unseen + ' unseen, ' + c.total + ' in all';
  }

  function showCountsError(err) {
    $('inbox-counts').textContent = 'counts unavailable: ' + err.message;
  }

  function renderRooms() {
    const list = $('rooms');
    const c = conn.client;
    const live = c !== null && c.state === 'live';
    const rooms = c && live ? [...c.rooms] : [];
    list.replaceChildren();
    for (const room of rooms.sort()) {
      const li = el('li');
      li.dataset.room = room;
      li.append(el('span', 'room', room));
      const b = el('button', 'leave', 'Leave');
      b.type = 'button';
      b.disabled = !live;
      b.dataset.room = room;
      b.addEventListener('click', () => { if (conn.client) conn.client.leave(room); });
      li.append(b);
      list.append(li);
    }
    if (!rooms.length) list.append(el('li', 'muted', 'none'));
  }

  // --- frame log ---

  let dupes = 0; // repeats the client dropped

  function dropped() {
    dupes++;
    $('log-dupes').textContent = dupes + (dupes === 1 ? ' repeated notification dropped' : ' repeated notifications dropped');
  }

  function pretty(v) {
    if (v === undefined) return 'undefined';
    return JSON.stringify(v, null, 2);
  }

  function logFrame(f) {
    const li = el('li', 'entry');
    li.dataset.topic = String(f.topic);
    const meta = el('div', 'meta');
    meta.append(el('time', 'when', now()), el('span', 'topic', f.topic));
    if (f.room) {
      li.dataset.room = String(f.room);
      meta.append(el('span', 'room', f.room));
    }
    li.append(meta);
    const d = f.data;
    if (f.topic === CREATED && d && typeof d === 'object') {
      li.classList.add('card');
      li.dataset.id = String(d.id);
      li.dataset.read = String(d.isRead === true);
      li.append(el('p', 'content', d.content));
      const dl = el('dl', 'facts');
      for (const [k, v] of [['state', stateText(li.dataset)], ['type', d.type], ['actionUrl', d.actionUrl], ['id', d.id], ['createdAt', d.createdAt]]) {
        dl.append(el('dt', '', k), el('dd', k, v === null || v === undefined ? '—' : v));
      }
      li.append(dl);
      const more = el('details');
      more.append(el('summary', '', 'data'), el('pre', '', pretty(d)));
      li.append(more);
    } else {
      li.append(el('pre', 'data', pretty(d)));
    }
    const log = $('log');
    log.prepend(li);
    while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
    $('log-count').textContent = String(log.children.length);
  }

  // --- operator: API key, status, broadcast ---

  let apiKey = '';
  let statusTimer = 0;
  let statusBusy = false;

  function useKey(key) {
    apiKey = key;
    store.set(KEY_STORE, key);
    $('broadcast-send').disabled = !key;
    $('apikey-forget').disabled = !key;
    clearInterval(statusTimer);
    clients.cursors = [''];
    if (!key) {
      $('status').dataset.ready = 'unknown';
      $('status-body').hidden = true;
      $('status-message').textContent = 'Paste an API key to see GET /status, refreshed every 5 s.';
      $('clients-table').hidden = true;
      $('clients-range').textContent = '';
      $('clients-message').textContent = 'Paste an API key to list the connected clients of every instance.';
      renderPager(null);
      return;
    }
    $('status-message').textContent = 'Loading…';
    refresh();
    statusTimer = setInterval(refresh, STATUS_EVERY);
  }

  function refresh() {
    refreshStatus();
    refreshClients();
  }

  // --- client list: GET /socket/websocket/clients, a page at a time ---

  const clients = {
    cursors: [''], // cursor of each page up to the one shown ('' = the first)
    next: null, // cursor of the page after the one shown
    busy: false,
    again: false, // asked for while busy: fetch once more after
  };

  async function refreshClients() {
    if (!apiKey) return;
    if (clients.busy) { clients.again = true; return; }
    clients.busy = true;
    const key = apiKey;
    const cursor = clients.cursors[clients.cursors.length - 1];
    let path = 'socket/websocket/clients?limit=' + CLIENTS_PAGE;
    if (cursor) path += '&cursor=' + encodeURIComponent(cursor);
    try {
      const { resp, json } = await call('GET', path);
      if (key !== apiKey) return;
      if (!resp.ok) {
        $('clients-message').textContent = apiError(resp, json);
        $('clients-message').className = 'error';
        return;
      }
      const page = json || {};
      if ((page.clients || []).length === 0 && clients.cursors.length > 1) {
        clients.cursors.pop(); // the page emptied: show the one before
        clients.again = true;
        return;
      }
      renderClients(page);
    } catch (err) {
      $('clients-message').textContent = 'cannot reach the server: ' + err.message;
      $('clients-message').className = 'error';
    } finally {
      clients.busy = false;
      if (clients.again) {
        clients.again = false;
        refreshClients();
      }
    }
  }

  function renderClients(page) {
    const list = page.clients || [];
    const first = (clients.cursors.length - 1) * CLIENTS_PAGE;
    const m = $('clients-message');
    m.className = 'muted';
    m.textContent = list.length ? '' : 'No client is connected.';
    $('clients-range').textContent = list.length ? (first + 1) + '–' + (first + list.length) + ' of ' + page.total : '0';
    $('clients-range').dataset.total = String(page.total);
    const table = $('clients-table');
    table.hidden = list.length === 0;
    const rows = table.tBodies[0];
    rows.replaceChildren();
    for (const c of list) {
      const tr = el('tr');
      tr.dataset.client = String(c.clientId || c.id);
      for (const v of [c.clientId || c.id, c.subject, (c.rooms || []).join(' '), c.instance || '', c.connectedSince]) tr.append(el('td', '', v));
      rows.append(tr);
    }
    clients.next = page.nextCursor || null;
    renderPager(page);
  }

  function renderPager(page) {
    const more = clients.cursors.length > 1;
    $('clients-first').disabled = !page || !more;
    $('clients-prev').disabled = !page || !more;
    $('clients-next').disabled = !page || !clients.next;
  }

  async function call(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + apiKey }, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(new URL(path, base), init);
    let json = null;
    try { json = await resp.json(); } catch { /* not JSON */ }
    return { resp, json };
  }

  async function refreshStatus() {
    if (!apiKey || statusBusy) return;
    statusBusy = true;
    const key = apiKey;
    try {
      const { resp, json } = await call('GET', 'status');
      if (key !== apiKey) return; // the key changed meanwhile
      if (!resp.ok) {
        statusFailed(apiError(resp, json));
        return;
      }
      renderStatus(json || {});
    } catch (err) {
      statusFailed('cannot reach the server: ' + err.message);
    } finally {
      statusBusy = false;
    }
  }

  function statusFailed(msg) {
    $('status').dataset.ready = 'error';
    const m = $('status-message');
    m.textContent = msg;
    m.className = 'error';
  }

  function setText(id, v) {
    $(id).textContent = v === undefined || v === null ? '–' : String(v);
  }

  function renderStatus(s) {
    $('status').dataset.ready = s.ready ? 'true' : 'false';
    const m = $('status-message');
    m.textContent = '';
    m.className = 'muted';
    $('status-body').hidden = false;
    const ready = $('status-ready');
    ready.textContent = s.ready ? 'ready' : 'not ready';
    ready.dataset.state = s.ready ? 'ok' : 'bad';
    setText('status-instance', s.instance);
    setText('status-version', s.version ? 'version ' + s.version : '');

    const checks = $('status-checks');
    checks.replaceChildren();
    for (const [name, v] of Object.entries(s.checks || {}).sort((a, b) => a[0].localeCompare(b[0]))) {
      const li = el('li', v === 'ok' ? 'ok' : 'bad');
      li.append(el('strong', '', name), document.createTextNode(': ' + v));
      checks.append(li);
    }

    const c = s.connections || {};
    setText('status-local', c.local);
    setText('status-total', c.total);
    setText('status-instances', s.instances);

    const k = s.consumer || {};
    let lag = k.totalLag === undefined ? '–' : String(k.totalLag);
    if (k.partitionsOwned !== undefined) lag += ' (this instance owns ' + k.partitionsOwned + ' partitions)';
    if (k.error) lag += ' — ' + k.error;
    setText('status-lag', lag);
    const rows = $('status-partitions').tBodies[0];
    rows.replaceChildren();
    for (const p of k.lag || []) {
      const tr = el('tr');
      const owner = p.instance || (p.member ? p.member + ' (instance not known yet)' : 'unassigned');
      for (const v of [p.partition, p.committed < 0 ? 'none' : p.committed, p.end, p.lag, owner]) tr.append(el('td', '', v));
      rows.append(tr);
    }
    const cluster = $('status-cluster');
    cluster.replaceChildren();
    for (const i of s.cluster || []) {
      const li = el('li', i.stale ? 'stale' : '');
      li.dataset.instance = String(i.id);
      const parts = (i.partitions || []).length ? 'partitions ' + i.partitions.join(', ') : 'no partition';
      li.textContent = i.id + (i.self ? ' (this one)' : '') + ': ' + i.clients + ' client(s), ' + parts;
      if (i.stale && i.note) li.append(el('div', '', i.note));
      cluster.append(li);
    }

    const dl = s.deadLetters;
    let dead = '–';
    if (dl && typeof dl === 'object') {
      dead = String(dl.pending === undefined ? '?' : dl.pending);
      const reasons = Object.entries(dl.byReason || {}).map(([r, n]) => r + ': ' + n);
      if (reasons.length) dead += ' (' + reasons.join(', ') + ')';
      if (dl.oldest) dead += ', oldest ' + dl.oldest;
    } else if (dl !== undefined && dl !== null) {
      dead = String(dl);
    }
    setText('status-dead', dead);
    setText('status-updated', now());
  }

  function broadcastResult(state, text) {
    const r = $('broadcast-result');
    r.dataset.state = state;
    r.className = state;
    r.textContent = text;
  }

  async function broadcast() {
    const topic = $('broadcast-topic').value.trim();
    const raw = $('broadcast-data').value.trim();
    if (!topic) { broadcastResult('error', 'A topic is required.'); return; }
    const body = { topic };
    if (raw !== '') {
      try {
        body.data = JSON.parse(raw);
      } catch (err) {
        $('broadcast-data').setAttribute('aria-invalid', 'true');
        broadcastResult('error', 'Data is not valid JSON: ' + err.message + '. Nothing was sent.');
        return;
      }
    }
    $('broadcast-data').removeAttribute('aria-invalid');
    broadcastResult('sending', 'Sending…');
    try {
      const { resp, json } = await call('POST', 'socket/websocket/clients/broadcast', body);
      if (resp.ok) broadcastResult('ok', 'Sent "' + topic + '" to every client.');
      else broadcastResult('error', apiError(resp, json));
    } catch (err) {
      broadcastResult('error', 'cannot reach the server: ' + err.message);
    }
  }

  // --- wiring ---

  document.addEventListener('DOMContentLoaded', () => {
    $('token').value = store.get(TOKEN_STORE);
    $('connect-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const token = $('token').value.trim();
      if (!token) return;
      store.set(TOKEN_STORE, token);
      connect(token);
    });
    $('disconnect').addEventListener('click', disconnect);
    $('refresh-token').addEventListener('click', () => {
      const token = $('token').value.trim();
      if (token) refreshToken(token);
    });

    $('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const room = $('room').value;
      if (!room || !conn.client) return;
      conn.client.join(room);
      $('room').value = '';
    });

    $('apikey-form').addEventListener('submit', (e) => {
      e.preventDefault();
      useKey($('apikey').value.trim());
    });
    $('apikey-forget').addEventListener('click', () => {
      $('apikey').value = '';
      useKey('');
    });
    $('broadcast-form').addEventListener('submit', (e) => {
      e.preventDefault();
      broadcast();
    });
    $('broadcast-data').addEventListener('input', () => $('broadcast-data').removeAttribute('aria-invalid'));

    $('clients-next').addEventListener('click', () => {
      if (!clients.next) return;
      clients.cursors.push(clients.next);
      refreshClients();
    });
    $('clients-prev').addEventListener('click', () => {
      if (clients.cursors.length > 1) clients.cursors.pop();
      refreshClients();
    });
    $('clients-first').addEventListener('click', () => {
      clients.cursors = [''];
      refreshClients();
    });

    $('log-clear').addEventListener('click', () => {
      $('log').replaceChildren();
      $('log-count').textContent = '0';
    });

    renderRooms();
    setState('disconnected');
    const key = store.get(KEY_STORE);
    if (key) {
      $('apikey').value = key;
      useKey(key);
    }
  });
}
