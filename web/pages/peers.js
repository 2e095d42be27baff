// Federation peers (regional administrators): the servers whose catalogs this one follows,
// each with its sync state and a "Sync now" button, the origins whose keys are pinned, and
// a form to add a peer. Anyone may look; only site administrators may add or sync.

import { h, formField, showProblem, clearProblem, setPending, problemText } from '../dom.js';

const MEDIA = ['redirect', 'mirror'];

function formatTime(iso, lang) {
  if (!iso) return null;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return null;
  return at.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
}

function stateBadge(t, state) {
  const known = ['new', 'ok', 'failing'].includes(state) ? state : 'new';
  return h('span', { class: `badge badge-peer-${known}` }, t(`peers.state.${known}`));
}

function addForm({ api, t, announce }, onAdded) {
  const url = formField({
    id: 'peer-url', label: t('peers.url'), type: 'url', autocomplete: 'off', hint: t('peers.urlHint'),
    attrs: { placeholder: 'https://county.example', maxlength: '500' },
  });
  const media = (() => {
    const id = 'peer-media';
    const hint = h('p', { id: `${id}-hint`, class: 'field-hint' }, t('peers.mediaHint'));
    const error = h('p', { id: `${id}-error`, class: 'field-error' });
    const input = h('select', { id, name: id, 'aria-describedby': `${hint.id} ${error.id}` },
      MEDIA.map((m) => h('option', { value: m }, t(`peers.media.${m}`))));
    return { wrapper: h('div', { class: 'field' }, h('label', { for: id }, t('peers.media')), hint, input, error), input, error };
  })();
  const fields = { url, media };
  const errorRegion = h('div', { id: 'peer-form-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'peer-submit', class: 'button button-primary' }, t('peers.add'));
  const form = h('form', { id: 'peer-form', class: 'form', 'aria-labelledby': 'peer-form-title' },
    url.wrapper, media.wrapper, errorRegion, h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('peers.adding'));
    clearProblem(errorRegion, fields);
    try {
      const peer = await api('POST', '/api/v1/peers', { url: url.input.value.trim(), media: media.input.value });
      announce(t('peers.added', { name: String(peer?.name ?? peer?.url ?? '') }));
      url.input.value = '';
      onAdded();
    } catch (err) {
      showProblem(errorRegion, err, { t, fields, summary: t('peers.addFailed') });
    } finally {
      pending = false;
      setPending(submit, false, t('peers.add'));
    }
  });
  return h('section', { class: 'card form-card', 'aria-labelledby': 'peer-form-title' },
    h('h2', { id: 'peer-form-title' }, t('peers.addTitle')), form);
}

export async function render(container, ctx) {
  const { api, t, session, signal, announce, lang } = ctx;
  const isAdmin = Boolean(session.user?.is_admin);
  const list = h('ul', { id: 'peer-list', class: 'peer-list', 'aria-label': t('peers.listLabel') });
  const origins = h('ul', { id: 'origin-list', class: 'origin-list' });
  const errorRegion = h('div', { id: 'peers-error', class: 'form-error', role: 'alert' });
  const status = h('p', { id: 'peers-status', class: 'note', role: 'status' });

  async function load() {
    let res;
    try {
      res = await api('GET', '/api/v1/peers', null, { signal });
    } catch (err) {
      if (err?.name === 'AbortError') return;
      errorRegion.replaceChildren(h('p', { class: 'form-error-summary' }, t('peers.loadFailed')),
        h('p', {}, problemText(err, t)));
      return;
    }
    errorRegion.replaceChildren();
    const peers = Array.isArray(res?.peers) ? res.peers : [];
    list.replaceChildren(...(peers.length ? peers.map(peerItem)
      : [h('li', { id: 'peers-empty', class: 'muted' }, t('peers.empty'))]));
    const pinned = Array.isArray(res?.origins) ? res.origins : [];
    origins.replaceChildren(...pinned.map((o) => h('li', {},
      h('span', { class: 'origin-id' }, String(o.id ?? '')), ' ',
      h('span', { class: 'muted' }, t(`peers.source.${['peer', 'well-known', 'relay'].includes(o.source) ? o.source : 'peer'}`)))));
  }

  function peerItem(p) {
    const fact = (label, value) => (value === null || value === undefined || value === '' ? null
      : h('div', { class: 'peer-fact' }, h('dt', {}, label), h('dd', {}, String(value))));
    const sync = isAdmin ? h('button', { type: 'button', class: 'button peer-sync', 'data-peer': p.id }, t('peers.syncNow')) : null;
    sync?.addEventListener('click', async () => {
      if (sync.getAttribute('aria-disabled') === 'true') return;
      setPending(sync, true, t('peers.syncing'));
      status.textContent = '';
      try {
        const report = await api('POST', `/api/v1/peers/${encodeURIComponent(p.id)}/sync`, {});
        const text = t('peers.synced', {
          name: String(p.name ?? ''), applied: report?.applied ?? 0, rejected: report?.rejected ?? 0,
        });
        status.textContent = text;
        announce(text);
      } catch (err) {
        status.textContent = `${t('peers.syncFailed')} ${problemText(err, t)}`;
      } finally {
        setPending(sync, false, t('peers.syncNow'));
        load();
      }
    });
    return h('li', { class: 'card peer-item', 'data-peer-id': p.id },
      h('h2', { class: 'peer-name' }, String(p.name ?? ''), ' ', stateBadge(t, p.state)),
      h('p', { class: 'peer-url' }, String(p.url ?? '')),
      h('dl', { class: 'peer-facts' },
        fact(t('peers.media'), t(`peers.media.${MEDIA.includes(p.media) ? p.media : 'redirect'}`)),
        fact(t('peers.lastSync'), formatTime(p.last_sync_at, lang) ?? t('peers.never')),
        fact(t('peers.lastSeq'), p.last_seq),
        fact(t('peers.received'), p.records_received),
        fact(t('peers.rejected'), p.records_rejected),
        fact(t('peers.mirrorsRejected'), p.mirrors_rejected || null),
        fact(t('peers.lastError'), p.last_error),
        fact(t('peers.lastRejection'), p.last_rejection)),
      sync);
  }

  container.append(
    h('h1', { id: 'peers-title' }, t('peers.title')),
    h('p', { class: 'lead' }, t('peers.lead')),
    errorRegion, status, list,
    h('h2', { id: 'origins-title' }, t('peers.origins')),
    h('p', { class: 'muted' }, t('peers.originsHint')),
    origins,
    isAdmin ? addForm(ctx, load) : h('p', { class: 'note' }, t('peers.adminOnly')));
  await load();
}
