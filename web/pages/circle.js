// One learning circle: #/circles/<id>[?invite=<code>]
// Non-members see a Join form (with the invite code for private circles; ?invite= fills it).
// Members see the room: history, then a live WebSocket (SPEC §8):
//   GET …/messages (newest 50) → render → WS …/live?since=<highest seq rendered>
// The socket reconnects with backoff (1 s, 2 s, 4 s … 15 s), always with since=<highest
// seq rendered>, so the server replays exactly what was missed; rendered seqs are kept in a
// Map anyway, so nothing shows twice. A `gap` frame is filled from the history endpoint.
// Sending is optimistic: a pending item keyed by its client_id, kept in a per-circle outbox
// (module level, so it survives a language switch or a visit elsewhere) and sent again with
// the SAME client_id after a reconnect; the server stores it once.
// Chat bodies are user text: they only ever go into text nodes.

import { h, problemText, showProblem, clearProblem, setPending } from '../dom.js';
import { ApiError } from '../api.js';
import { circleHref, visibilityBadge } from './circles.js';

const MAX_BODY_CHARS = 4000; // the server counts characters (code points), not UTF-16 units
const HISTORY_PAGE = 50;
const GAP_PAGE = 200; // the history endpoint's largest page
const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 15000;
const ANNOUNCE_DELAY_MS = 1200; // new messages arriving within this are announced together
const ANNOUNCE_BODY_CHARS = 160;
const NEAR_BOTTOM_PX = 80;

/** circle id → Map(client_id → {body, failed: string|null}), in the order typed. */
const outboxes = new Map();

/** A v4 UUID. crypto.randomUUID() exists only in secure contexts (a village server may be plain http). */
function newClientId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const charCount = (text) => [...text].length;
const asSeq = (value) => (Number.isSafeInteger(value) && value > 0 ? value : null);

export async function render(container, ctx) {
  const { api, t, session, params, signal } = ctx;
  const base = `/api/v1/circles/${encodeURIComponent(params.id)}`;
  let circle = null;
  let privateNonMember = false;
  try {
    circle = await api('GET', base, null, { signal });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 401 || err.status === 403) {
      privateNonMember = true;
    } else if ([400, 404, 422].includes(err.status)) {
      container.append(h('section', { class: 'card narrow' },
        h('h1', { id: 'circle-title' }, t('circle.notFound')),
        h('p', {}, t('circle.notFoundBody')),
        h('p', {}, h('a', { href: '#/circles' }, t('circle.backToList')))));
      return;
    } else {
      throw err;
    }
  }

  const article = h('article', { class: 'circle', 'aria-labelledby': 'circle-title' },
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/circles' }, t('circle.backToList'))));
  container.append(article);

  if (privateNonMember) {
    article.append(h('h1', { id: 'circle-title' }, t('circle.privateTitle')),
      h('p', {}, t('circle.privateBody')));
    renderJoin(article, ctx, { circle: null, base, isPrivate: true });
    return;
  }

  const description = String(circle.description ?? '').trim();
  article.append(
    h('header', { class: 'circle-header' },
      h('h1', { id: 'circle-title' }, String(circle.name ?? '')),
      h('p', { class: 'circle-badges' }, visibilityBadge(t, circle.visibility)),
      description ? h('p', { id: 'circle-description-text', class: 'circle-description' }, description) : null));

  if (!circle.role) {
    renderJoin(article, ctx, { circle, base, isPrivate: circle.visibility === 'private' });
    return;
  }
  await renderRoom(article, ctx, { circle, base });
}

// ---------- joining ----------

function renderJoin(article, { api, t, session, query, navigate, announce }, { circle, base, isPrivate }) {
  if (!session.user) {
    article.append(h('p', { id: 'circle-signin', class: 'note' }, `${t('circle.signInToJoin')} `,
      h('a', { href: '#/signin' }, t('header.signIn'))));
    return;
  }
  let code = null;
  if (isPrivate) {
    const hint = h('p', { id: 'circle-invite-code-hint', class: 'field-hint' }, t('circle.inviteHint'));
    const error = h('p', { id: 'circle-invite-code-error', class: 'field-error' });
    const input = h('input', {
      id: 'circle-invite-code', name: 'invite_code', type: 'text', required: true,
      autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false',
      'aria-describedby': `${hint.id} ${error.id}`, value: query.get('invite') || null,
    });
    code = { wrapper: h('div', { class: 'field' }, h('label', { for: input.id }, t('circle.inviteCode')), hint, input, error), input, error };
  }
  const fields = code ? { invite_code: code } : {};
  const errorRegion = h('div', { id: 'circle-join-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'circle-join', class: 'button button-primary' }, t('circle.join'));
  const form = h('form', { id: 'circle-join-form', class: 'form circle-join', 'aria-label': t('circle.join') },
    circle ? h('p', {}, t('circle.joinLead')) : null,
    code?.wrapper, errorRegion, h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('circle.joining'));
    clearProblem(errorRegion, fields);
    try {
      const body = code ? { invite_code: code.input.value.trim() } : {};
      const joined = await api('POST', `${base}/join`, body);
      announce(t('circle.joined', { name: String(joined?.name ?? circle?.name ?? '') }));
      // Re-render as a member (and drop ?invite= from the address).
      navigate(`/circles/${encodeURIComponent(joined?.id ?? circle?.id)}`, { replace: true });
    } catch (err) {
      showProblem(errorRegion, err, {
        t, fields, summary: t('circle.joinFailed'),
        statusMessages: code ? { 403: t('circle.wrongCode') } : {},
      });
      if (code && err instanceof ApiError && err.status === 403) {
        code.input.setAttribute('aria-invalid', 'true');
        code.input.focus();
      }
    } finally {
      pending = false;
      setPending(submit, false, t('circle.join'));
    }
  });
  article.append(form);
}

// ---------- the room ----------

async function renderRoom(article, ctx, { circle, base }) {
  const { api, t, session, signal, navigate, announce, lang } = ctx;
  const circleId = String(circle.id);
  const me = session.user;
  const name = String(circle.name ?? '');

  // ----- owner / moderator info and the leave button -----
  const role = String(circle.role);
  const info = [];
  if (role === 'owner' || role === 'moderator') info.push(h('p', {}, t(`circle.role.${role}`)));
  if (circle.invite_code) {
    const link = `${location.origin}${location.pathname}${circleHref(circleId)}?invite=${encodeURIComponent(circle.invite_code)}`;
    info.push(
      h('p', { class: 'circle-invite' }, `${t('circle.yourInvite')} `,
        h('code', { id: 'circle-invite', class: 'invite-code' }, String(circle.invite_code))),
      h('div', { class: 'field circle-invite-link' },
        h('label', { for: 'circle-invite-link' }, t('circle.inviteLink')),
        h('input', { id: 'circle-invite-link', type: 'text', readonly: true, value: link, onfocus: (e) => e.currentTarget.select() })));
  }
  const actionError = h('div', { id: 'circle-action-error', class: 'form-error', role: 'alert' });
  let leave = null;
  if (role !== 'owner') { // the owner cannot leave (409)
    leave = h('button', { type: 'button', id: 'circle-leave', class: 'button button-danger' }, t('circle.leave'));
    leave.addEventListener('click', async () => {
      if (leave.getAttribute('aria-disabled') === 'true') return;
      if (!window.confirm(t('circle.leaveConfirm', { name }))) return;
      setPending(leave, true, t('circle.leaving'));
      actionError.replaceChildren();
      try {
        await api('POST', `${base}/leave`);
        stop();
        outboxes.delete(circleId);
        announce(t('circle.left', { name }));
        navigate('/circles');
      } catch (err) {
        setPending(leave, false, t('circle.leave'));
        actionError.replaceChildren(h('p', { class: 'form-error-summary' }, t('circle.leaveFailed')),
          h('p', {}, problemText(err, t)));
      }
    });
  }

  // ----- the chat elements -----
  const presence = h('p', { id: 'chat-presence', class: 'chat-presence' });
  const older = h('button', { type: 'button', id: 'chat-older', class: 'button button-quiet chat-older', hidden: true },
    t('chat.older'));
  const list = h('ol', {
    id: 'chat-messages', class: 'chat-messages', tabindex: '0', 'aria-label': t('chat.messages'),
    'data-connected': 'false',
  });
  const empty = h('p', { id: 'chat-empty', class: 'muted chat-empty', hidden: true }, t('chat.empty'));
  const statusText = h('span', { id: 'chat-status-text' });
  const reconnectNow = h('button', { type: 'button', id: 'chat-reconnect', class: 'button button-quiet', hidden: true },
    t('chat.reconnectNow'));
  const status = h('p', { id: 'chat-status', class: 'chat-status', role: 'status', 'aria-live': 'polite' }, statusText);
  const announcer = h('div', { id: 'chat-announcer', class: 'visually-hidden', 'aria-live': 'polite' });
  const input = h('textarea', {
    id: 'chat-input', name: 'body', rows: '3', class: 'chat-input',
    enterkeyhint: 'send', 'aria-describedby': 'chat-hint chat-count',
  });
  const count = h('span', { id: 'chat-count', class: 'chat-count' });
  const send = h('button', { type: 'submit', id: 'chat-send', class: 'button button-primary chat-send' }, t('chat.send'));
  const form = h('form', { id: 'chat-form', class: 'chat-form', 'aria-label': t('chat.label') },
    h('label', { for: 'chat-input', class: 'chat-label' }, t('chat.label')),
    input,
    h('div', { class: 'chat-composer-row' },
      h('p', { id: 'chat-hint', class: 'field-hint chat-hint' }, t('chat.hint')),
      count,
      send));

  if (info.length) article.append(h('div', { class: 'circle-info' }, info));
  article.append(
    h('section', { class: 'chat', 'aria-labelledby': 'chat-heading' },
      h('h2', { id: 'chat-heading', class: 'chat-heading' }, t('chat.heading')),
      presence,
      h('div', { class: 'chat-older-row' }, older),
      list, empty,
      h('div', { class: 'chat-status-row' }, status, reconnectNow),
      announcer,
      form),
    h('div', { class: 'circle-actions' }, leave, actionError));

  // ----- state -----
  const rendered = new Map(); // seq → <li>: the de-duplication set
  const pendingEls = new Map(); // client_id → <li> of a message not yet acknowledged
  let outbox = outboxes.get(circleId);
  if (!outbox) { outbox = new Map(); outboxes.set(circleId, outbox); }
  let maxSeq = 0;
  let minSeq = Infinity;
  let baseSeq = 0; // since= when nothing is rendered: the circle's last_seq
  let ws = null;
  let inflight = []; // client_ids sent on the current socket, awaiting their ack or error, in order
  let attempt = 0;
  let reconnectTimer = null;
  let stopped = false;
  let overAnnounced = false; // "too long" was said once; said again only after going back under

  // ----- formatting -----
  const locale = lang === 'zh' ? 'zh-CN' : 'en';
  const timeFmt = new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit' });
  const dayFmt = new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
  const yearFmt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const fullFmt = new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'short' });
  function timeEl(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return null;
    const now = new Date();
    const fmt = d.toDateString() === now.toDateString() ? timeFmt
      : d.getFullYear() === now.getFullYear() ? dayFmt : yearFmt;
    return h('time', { class: 'chat-time', datetime: d.toISOString(), title: fullFmt.format(d) }, fmt.format(d));
  }

  const isMine = (author) => Boolean(me && author && String(author.id) === String(me.id));

  function messageItem(m) {
    const mine = isMine(m.author);
    const deleted = Boolean(m.deleted);
    return h('li', {
      class: `chat-message${mine ? ' is-mine' : ''}${deleted ? ' is-deleted' : ''}`,
      'data-seq': String(m.seq),
      'data-client-id': mine && m.client_id ? String(m.client_id) : null,
    },
    h('p', { class: 'chat-meta' },
      h('span', { class: 'chat-author' }, String(m.author?.display_name ?? '')),
      ' ', timeEl(m.sent_at)),
    deleted ? h('p', { class: 'chat-body chat-deleted' }, t('chat.deleted'))
      : h('p', { class: 'chat-body' }, String(m.body ?? '')));
  }

  function pendingItem(clientId) {
    const entry = outbox.get(clientId);
    const sending = ws && ws.readyState === WebSocket.OPEN && inflight.includes(clientId);
    const li = h('li', { class: `chat-message is-mine is-pending${entry.failed ? ' is-failed' : ''}`, 'data-client-id': clientId },
      h('p', { class: 'chat-meta' },
        h('span', { class: 'chat-author' }, String(me?.display_name ?? t('chat.you'))),
        ' ',
        h('span', { class: 'chat-state' },
          entry.failed ? t('chat.notSent') : sending ? t('chat.sending') : t('chat.waiting'))),
      h('p', { class: 'chat-body' }, entry.body));
    if (entry.failed) {
      li.append(h('p', { class: 'chat-failed' }, entry.failed),
        h('p', { class: 'chat-failed-actions' },
          h('button', { type: 'button', class: 'button button-quiet chat-retry', onclick: () => retry(clientId) }, t('chat.retry')),
          h('button', { type: 'button', class: 'button button-quiet chat-discard', onclick: () => discard(clientId) }, t('chat.discard'))));
    }
    return li;
  }

  function refreshPending(clientId) {
    const old = pendingEls.get(clientId);
    if (!old || !outbox.has(clientId)) return;
    const hadFocus = old.contains(document.activeElement);
    const li = pendingItem(clientId);
    old.replaceWith(li);
    pendingEls.set(clientId, li);
    if (hadFocus) (li.querySelector('.chat-retry') || input).focus();
  }

  function updateEmpty() {
    empty.hidden = rendered.size > 0 || pendingEls.size > 0;
  }

  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  const toBottom = () => { list.scrollTop = list.scrollHeight; };

  /** Put a confirmed message in seq order (before the pending ones); replace one already shown. */
  function upsert(m) {
    const seq = asSeq(m?.seq);
    if (seq === null) return false;
    // Our own pending message, confirmed by a replay or a live frame before (or without) its ack.
    if (m.client_id && isMine(m.author) && pendingEls.has(m.client_id)) {
      pendingEls.get(m.client_id).remove();
      pendingEls.delete(m.client_id);
      outbox.delete(m.client_id);
    }
    const li = messageItem(m);
    const existing = rendered.get(seq);
    if (existing) {
      if (existing.classList.contains('is-deleted') && !m.deleted) return false; // a delete wins
      existing.replaceWith(li);
    } else {
      // Usually the newest: walk back from the end past pending items and higher seqs.
      let after = list.lastElementChild;
      while (after && (!after.dataset.seq || Number(after.dataset.seq) > seq)) after = after.previousElementSibling;
      if (after) after.after(li); else list.prepend(li);
    }
    rendered.set(seq, li);
    maxSeq = Math.max(maxSeq, seq);
    minSeq = Math.min(minSeq, seq);
    updateEmpty();
    return !existing;
  }

  function markDeleted(seq) {
    const li = rendered.get(asSeq(seq));
    if (!li || li.classList.contains('is-deleted')) return;
    li.classList.add('is-deleted');
    li.querySelector('.chat-body')?.replaceWith(h('p', { class: 'chat-body chat-deleted' }, t('chat.deleted')));
  }

  // ----- announcing new messages (batched, never every message of a burst) -----
  let heard = [];
  let announceTimer = null;
  function hear(m) {
    heard.push(m);
    if (!announceTimer) announceTimer = setTimeout(flushHeard, ANNOUNCE_DELAY_MS);
  }
  function flushHeard() {
    announceTimer = null;
    if (stopped || !heard.length) { heard = []; return; }
    let text;
    if (heard.length === 1) {
      const m = heard[0];
      const chars = [...String(m.body ?? '')];
      const body = chars.length > ANNOUNCE_BODY_CHARS ? `${chars.slice(0, ANNOUNCE_BODY_CHARS).join('')}…` : chars.join('');
      text = t('chat.newMessage', { name: String(m.author?.display_name ?? ''), body });
    } else {
      text = t('chat.newMessages', { n: heard.length });
    }
    heard = [];
    announcer.textContent = '';
    setTimeout(() => { if (!stopped) announcer.textContent = text; }, 50);
  }

  // ----- status line -----
  function setStatus(text, { reconnectable = false } = {}) {
    if (statusText.textContent !== text) statusText.textContent = text;
    reconnectNow.hidden = !reconnectable;
  }

  // A large circle's frame names only some of those online; `count` is everyone.
  function presenceText(online, count) {
    const seen = new Set();
    const names = [];
    for (const p of Array.isArray(online) ? online : []) {
      const key = String(p?.id ?? '');
      if (seen.has(key)) continue;
      seen.add(key);
      names.push(String(p?.display_name ?? ''));
    }
    const more = Number.isInteger(count) ? count - names.length : 0;
    let text = names.length ? t('chat.online', { names: names.join(t('list.separator')) }) : '';
    if (more > 0) text += t('chat.online_more', { count: more });
    presence.textContent = text;
  }

  // ----- history -----
  try {
    const res = await api('GET', `${base}/messages?limit=${HISTORY_PAGE}`, null, { signal });
    const messages = Array.isArray(res?.messages) ? res.messages : [];
    for (const m of messages) upsert(m);
    older.hidden = messages.length < HISTORY_PAGE;
  } catch (err) {
    if (err?.name === 'AbortError') return;
    setStatus(`${t('chat.historyFailed')} ${problemText(err, t)}`);
  }
  baseSeq = maxSeq > 0 ? 0 : Math.max(0, Number(circle.last_seq) || 0);
  // Drafts from an earlier visit that the history shows as stored are done.
  for (const li of rendered.values()) if (li.dataset.clientId) outbox.delete(li.dataset.clientId);
  for (const clientId of outbox.keys()) {
    const li = pendingItem(clientId);
    list.append(li);
    pendingEls.set(clientId, li);
  }
  updateEmpty();
  updateCount();
  setTimeout(updateCount, 0); // after the router restores a draft (language switch)
  toBottom();

  older.addEventListener('click', async () => {
    if (older.getAttribute('aria-disabled') === 'true' || !Number.isFinite(minSeq)) return;
    setPending(older, true, t('status.loading'));
    try {
      const res = await api('GET', `${base}/messages?before=${minSeq}&limit=${HISTORY_PAGE}`, null, { signal });
      const messages = Array.isArray(res?.messages) ? res.messages : [];
      const fromBottom = list.scrollHeight - list.scrollTop;
      let added = 0;
      for (const m of messages) if (upsert(m)) added += 1;
      list.scrollTop = list.scrollHeight - fromBottom; // keep what the reader was looking at
      setPending(older, false, t('chat.older'));
      if (messages.length < HISTORY_PAGE) {
        older.hidden = true;
        list.focus();
        setStatus(t('chat.olderNone'));
      } else {
        setStatus(t('chat.olderLoaded', { n: added }));
      }
    } catch (err) {
      if (err?.name === 'AbortError') return;
      setPending(older, false, t('chat.older'));
      setStatus(`${t('chat.olderFailed')} ${problemText(err, t)}`);
    }
  });

  // ----- gaps: the replay said it skipped seqs from..to; page through them -----
  const gaps = [];
  let gapRunning = false;
  async function fillGaps() {
    if (gapRunning) return;
    gapRunning = true;
    try {
      while (gaps.length && !stopped) {
        const gap = gaps[0];
        while (gap.from <= gap.to) {
          const res = await api('GET', `${base}/messages?after=${gap.from - 1}&limit=${GAP_PAGE}`, null, { signal });
          const messages = Array.isArray(res?.messages) ? res.messages : [];
          const stay = nearBottom();
          let last = gap.from - 1;
          for (const m of messages) {
            const seq = asSeq(m?.seq);
            if (seq === null) continue;
            last = Math.max(last, seq);
            if (seq <= gap.to && !rendered.has(seq)) upsert(m);
          }
          if (stay) toBottom();
          if (messages.length < GAP_PAGE || last < gap.from) break;
          gap.from = last + 1;
        }
        gaps.shift();
      }
    } catch (err) {
      if (err?.name !== 'AbortError' && !stopped) setStatus(t('chat.gapFailed')); // retried on the next open
    } finally {
      gapRunning = false;
    }
  }

  // ----- sending -----
  function trySend(clientId) {
    const entry = outbox.get(clientId);
    if (!entry || entry.failed || inflight.includes(clientId)) return;
    if (ws && ws.readyState === WebSocket.OPEN) {
      try {
        ws.send(JSON.stringify({ type: 'send', client_id: clientId, body: entry.body }));
        inflight.push(clientId);
      } catch { /* the close event follows; it is sent again after the reconnect */ }
    }
    refreshPending(clientId);
  }

  function retry(clientId) {
    const entry = outbox.get(clientId);
    if (!entry) return;
    entry.failed = null;
    refreshPending(clientId);
    trySend(clientId);
  }

  function discard(clientId) {
    outbox.delete(clientId);
    pendingEls.get(clientId)?.remove();
    pendingEls.delete(clientId);
    updateEmpty();
    input.focus();
  }

  function updateCount() {
    const n = charCount(input.value);
    const over = n - MAX_BODY_CHARS;
    count.textContent = over > 0 ? t('chat.tooLong', { over, max: MAX_BODY_CHARS }) : t('chat.count', { n, max: MAX_BODY_CHARS });
    count.classList.toggle('is-over', over > 0);
    if (over > 0) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    if (over > 0 && !overAnnounced) announce(count.textContent);
    overAnnounced = over > 0;
  }

  input.addEventListener('input', updateCount);
  input.addEventListener('keydown', (event) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate (pinyin) does neither.
    if (event.key !== 'Enter' || event.shiftKey || event.altKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (stopped) return;
    const body = input.value;
    if (!body.trim()) {
      setStatus(t('chat.error.empty'));
      input.focus();
      return;
    }
    if (charCount(body) > MAX_BODY_CHARS) {
      setStatus(count.textContent);
      input.focus();
      return;
    }
    const clientId = newClientId();
    outbox.set(clientId, { body, failed: null });
    const li = pendingItem(clientId);
    list.append(li);
    pendingEls.set(clientId, li);
    updateEmpty();
    input.value = '';
    updateCount();
    trySend(clientId);
    toBottom();
    input.focus();
  });

  // ----- frames -----
  function onAck(frame) {
    const clientId = String(frame.client_id ?? '');
    const i = inflight.indexOf(clientId);
    if (i !== -1) inflight.splice(i, 1);
    const seq = asSeq(frame.seq);
    const li = pendingEls.get(clientId);
    if (!li || seq === null) return;
    const entry = outbox.get(clientId);
    pendingEls.delete(clientId);
    outbox.delete(clientId);
    li.remove();
    // Shown as sent now; the `message` frame with this seq (if it comes) replaces it.
    if (!rendered.has(seq) && entry) {
      upsert({ seq, author: { id: me?.id, display_name: me?.display_name ?? '' }, body: entry.body,
        sent_at: new Date().toISOString(), client_id: clientId });
    }
  }

  function onError(frame) {
    const code = String(frame.code ?? '');
    const known = ['rate_limited', 'too_long', 'empty', 'bad_frame', 'muted', 'not_member', 'internal'];
    const text = known.includes(code) ? t(`chat.error.${code}`) : String(frame.message || t('error.generic'));
    // Each send frame gets exactly one ack or error, in order: this error is for the oldest in flight.
    const clientId = inflight.shift();
    if (clientId && outbox.has(clientId)) {
      outbox.get(clientId).failed = text;
      refreshPending(clientId);
    }
    setStatus(text);
    if (code === 'not_member') halt(t('chat.removed'));
  }

  function onFrame(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { return; }
    if (!frame || typeof frame !== 'object') return;
    switch (frame.type) {
      case 'message': {
        const stay = nearBottom();
        if (upsert(frame) && !isMine(frame.author)) hear(frame);
        if (stay) toBottom();
        break;
      }
      case 'ack': onAck(frame); break;
      case 'presence': presenceText(frame.online, frame.count); break;
      case 'deleted': markDeleted(frame.seq); break;
      case 'gap': {
        const from = asSeq(frame.from);
        const to = asSeq(frame.to);
        if (from !== null && to !== null && from <= to) { gaps.push({ from, to }); fillGaps(); }
        break;
      }
      case 'error': onError(frame); break;
      default: break; // a newer server's frame
    }
  }

  // ----- the socket -----
  function connect() {
    if (stopped) return;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (ws) return;
    const since = Math.max(maxSeq, baseSeq);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let socket;
    try {
      socket = new WebSocket(`${proto}//${location.host}${base}/live?since=${since}`);
    } catch {
      scheduleReconnect();
      return;
    }
    ws = socket;
    inflight = [];
    let opened = false;
    if (attempt === 0) setStatus(t('chat.connecting'));
    socket.addEventListener('open', () => {
      if (ws !== socket) return;
      opened = true;
      attempt = 0;
      list.setAttribute('data-connected', 'true');
      setStatus(t('chat.connected'));
      for (const clientId of outbox.keys()) trySend(clientId); // same client_ids: stored once
      if (gaps.length) fillGaps();
    });
    socket.addEventListener('message', (event) => {
      if (ws === socket && typeof event.data === 'string') onFrame(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (ws !== socket) return;
      ws = null;
      inflight = [];
      list.setAttribute('data-connected', 'false');
      presence.textContent = ''; // stale until the next presence frame
      for (const clientId of pendingEls.keys()) refreshPending(clientId);
      onClose(event, opened);
    });
  }

  async function onClose(event, opened) {
    if (stopped) return;
    // 1008: removed from the circle (stop) — or too slow to keep up (just reconnect).
    if (event.code === 1008 && !/slow/i.test(event.reason || '')) {
      halt(t('chat.removed'));
      return;
    }
    if (!opened) {
      // Refused before the upgrade (no HTTP status reaches a WebSocket): still a member?
      try {
        const now = await api('GET', base, null, { signal });
        if (stopped) return;
        if (!now?.role) { halt(t('chat.removed')); return; }
      } catch (err) {
        if (stopped || err?.name === 'AbortError') return;
        if (err instanceof ApiError && err.status === 401) { halt(t('chat.signedOut')); return; }
        if (err instanceof ApiError && [403, 404].includes(err.status)) { halt(t('chat.removed')); return; }
      }
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (stopped) return;
    const delay = Math.min(BACKOFF_START_MS * 2 ** attempt, BACKOFF_MAX_MS);
    attempt += 1;
    setStatus(t('chat.reconnecting'), { reconnectable: true });
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  /** Stop for good (and close the socket); `why` goes to the status line. */
  function stop() {
    stopped = true;
    clearTimeout(reconnectTimer);
    clearTimeout(announceTimer);
    const socket = ws;
    ws = null;
    list.setAttribute('data-connected', 'false');
    presence.textContent = '';
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'leaving');
  }

  function halt(why) {
    stop();
    setStatus(why);
    input.disabled = true;
    send.setAttribute('aria-disabled', 'true');
  }

  reconnectNow.addEventListener('click', () => {
    attempt = 0;
    input.focus();
    connect();
  });
  window.addEventListener('online', () => { if (!ws && !stopped) { attempt = 0; connect(); } }, { signal });
  signal.addEventListener('abort', stop, { once: true });

  if (!signal.aborted) connect();
}
