// Search: free text (Chinese, English, pinyin) with facets, sort and pages.
// Address: #/search?q=&subject=&audience=&kind=&region=&institution=&language=&origin=&sort=&offset=&limit=
// — the same names as GET /api/v1/search, so a result list can be shared. Each
// new query, filter or page pushes a history entry (Back returns to the previous
// results: the router re-renders this page from the address on hashchange).
//
// The server's `snippet` is HTML-escaped text with <mark>…</mark> around the
// matched words. It is NOT parsed as HTML here: renderSnippet() splits it on the
// two tags and builds text nodes and <mark> elements itself.

import { h, problemText } from '../dom.js';
import { label, formatRegion, courseHref, chips, languageName } from '../courseware.js';

const PAGE_SIZE = 20;
const MAX_LIMIT = 100;
const FILTERS = ['subject', 'audience', 'kind', 'region', 'institution', 'language', 'origin'];
// Facets offered as toggle buttons; their values have labels in courseware.js.
const VOCAB_FACETS = ['subject', 'audience', 'kind'];
const SORTS = ['relevance', 'newest'];
const SLOW_MS = 400; // say "Searching…" only when a search takes longer than this

// ---------- the snippet: <mark>-only markup, never innerHTML ----------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Undo the server's HTML escaping of text (one pass, so '&amp;lt;' stays '&lt;'). */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** 'a <mark>太极</mark> &amp; b' → [text 'a ', <mark>太极</mark>, text ' & b']. */
export function renderSnippet(snippet) {
  const nodes = [];
  let open = false;
  for (const part of String(snippet ?? '').split(/(<\/?mark>)/i)) {
    const tag = part.toLowerCase();
    if (tag === '<mark>') { open = true; continue; }
    if (tag === '</mark>') { open = false; continue; }
    if (!part) continue;
    const text = decodeEntities(part);
    nodes.push(open ? h('mark', {}, text) : document.createTextNode(text));
  }
  return nodes;
}

// ---------- small helpers ----------

/** 75 → '1:15', 3725 → '1:02:05'. */
function formatTime(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

/** The origin (a server's public URL) as a host name, or the text itself. */
function originHost(origin) {
  try { return new URL(origin).host || String(origin); } catch { return String(origin); }
}

function sameServer(origin, localIds) {
  if (!origin) return true;
  const text = String(origin);
  let normalized = text.replace(/\/+$/, '');
  try { normalized = new URL(text).origin; } catch { /* not a URL: compare as is */ }
  return localIds.has(text) || localIds.has(normalized);
}

// This server's own id (its public URL) from /.well-known/shuyuan, asked once:
// it may differ from location.origin behind a proxy. location.origin always counts.
let wellKnown = null;
function localServerIds() {
  wellKnown ??= fetch('/.well-known/shuyuan', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then((res) => (res.ok ? res.json() : null))
    .catch(() => null);
  return wellKnown.then((info) => {
    const ids = new Set([location.origin]);
    for (const v of [info?.id, info?.public_url]) {
      if (typeof v !== 'string' || !v) continue;
      ids.add(v);
      try { ids.add(new URL(v).origin); } catch { /* ignore */ }
    }
    return ids;
  });
}

/** 'zhejiang/hangzhou' → ['zhejiang', 'hangzhou']. */
const segments = (path) => String(path).split('/').filter(Boolean);

function compareRegions(a, b) {
  const x = segments(a);
  const y = segments(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

// ---------- the page ----------

export async function render(container, { api, t, query, signal, lang }) {
  // ----- state from the address -----
  function readState(q) {
    const state = { q: (q.get('q') || '').trim() };
    for (const f of FILTERS) state[f] = (q.get(f) || '').trim();
    const sort = q.get('sort') || '';
    state.sort = SORTS.includes(sort) ? sort : '';
    const offset = Number.parseInt(q.get('offset') || '', 10);
    state.offset = Number.isFinite(offset) && offset > 0 ? offset : 0;
    const limit = Number.parseInt(q.get('limit') || '', 10);
    state.limit = Number.isFinite(limit) && limit >= 1 ? Math.min(limit, MAX_LIMIT) : PAGE_SIZE;
    return state;
  }

  /** Address and API parameters: the same names; defaults are left out. */
  function toParams(state, { forApi = false } = {}) {
    const params = new URLSearchParams();
    if (state.q) params.set('q', state.q);
    for (const f of FILTERS) if (state[f]) params.set(f, state[f]);
    if (state.sort) params.set('sort', state.sort);
    if (state.offset) params.set('offset', String(state.offset));
    if (forApi || state.limit !== PAGE_SIZE) params.set('limit', String(state.limit));
    return params;
  }

  const hashOf = (state) => {
    const qs = toParams(state).toString();
    return `#/search${qs ? `?${qs}` : ''}`;
  };

  let state = readState(query);
  const effectiveSort = () => state.sort || (state.q ? 'relevance' : 'newest');

  // ----- the search form -----
  const input = h('input', {
    id: 'search-q', name: 'q', type: 'search', class: 'search-input',
    autocomplete: 'off', spellcheck: 'false', enterkeyhint: 'search',
    placeholder: t('search.placeholder'),
    'aria-describedby': 'search-q-hint search-q-error',
  });
  input.value = state.q;
  const inputError = h('p', { id: 'search-q-error', class: 'field-error' });
  const form = h('form', { id: 'search-form', class: 'search-form', role: 'search', 'aria-label': t('search.title') },
    h('label', { for: 'search-q', class: 'search-label' }, t('search.label')),
    h('p', { id: 'search-q-hint', class: 'field-hint' }, t('search.hint')),
    h('div', { class: 'search-row' },
      input,
      h('button', { type: 'submit', id: 'search-submit', class: 'button button-primary search-button' }, t('search.submit'))),
    inputError);

  // ----- sidebar: facets -----
  const institutionSelect = h('select', { id: 'search-institution', name: 'institution' },
    h('option', { value: '' }, t('search.allInstitutions')));
  const facetsBody = h('div', { class: 'facet-groups' });
  // On a phone the filters sit above the results, folded behind a disclosure
  // button (CSS shows either the plain heading text or the button, never both).
  const facetsToggleCount = h('span', { class: 'facets-toggle-count' });
  const facetsToggle = h('button', {
    type: 'button', id: 'search-facets-toggle', class: 'facets-toggle',
    'aria-expanded': 'false', 'aria-controls': 'search-facets-panel',
  }, h('span', { class: 'facets-toggle-icon', 'aria-hidden': 'true' }), t('search.filters'), facetsToggleCount);
  const facets = h('aside', { id: 'search-facets', class: 'search-facets', 'aria-labelledby': 'search-facets-title' },
    h('h2', { id: 'search-facets-title', class: 'facets-title', tabindex: '-1' },
      h('span', { class: 'facets-title-text' }, t('search.filters')),
      facetsToggle),
    h('div', { id: 'search-facets-panel', class: 'facets-panel' },
      facetsBody,
      h('div', { class: 'field facet-institution' },
        h('label', { for: 'search-institution' }, t('search.facet.institution')),
        institutionSelect)));
  facetsToggle.addEventListener('click', () => {
    const open = facetsToggle.getAttribute('aria-expanded') !== 'true';
    facetsToggle.setAttribute('aria-expanded', String(open));
    facets.classList.toggle('is-open', open);
  });

  // ----- results column -----
  const count = h('p', { id: 'search-count', class: 'search-count', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', tabindex: '-1' });
  const sortSelect = h('select', { id: 'search-sort', name: 'sort' },
    SORTS.map((s) => h('option', { value: s }, t(`search.sort.${s}`))));
  const activeFilters = h('div', { id: 'search-active-filters', class: 'active-filters', role: 'group', 'aria-label': t('search.active'), hidden: true });
  const errorRegion = h('div', { id: 'search-error', class: 'form-error', role: 'alert' });
  const results = h('ul', { id: 'search-results', class: 'search-results', 'aria-labelledby': 'search-results-title' });
  const empty = h('div', { id: 'search-empty', class: 'card search-empty', hidden: true });
  const prev = h('button', { type: 'button', id: 'search-prev', class: 'button button-quiet', hidden: true }, t('search.prev'));
  const next = h('button', { type: 'button', id: 'search-next', class: 'button button-quiet', hidden: true }, t('search.next'));
  const pageInfo = h('span', { id: 'search-page', class: 'search-page' });
  const pager = h('nav', { class: 'search-pager', 'aria-label': t('search.pages'), hidden: true }, prev, pageInfo, next);

  const resultsColumn = h('section', { class: 'search-main', 'aria-labelledby': 'search-results-title' },
    h('h2', { id: 'search-results-title', class: 'visually-hidden' }, t('search.results')),
    h('div', { class: 'search-toolbar' },
      count,
      h('div', { class: 'field search-sort' }, h('label', { for: 'search-sort' }, t('search.sort')), sortSelect)),
    activeFilters, errorRegion, empty, results, pager);

  container.append(
    h('h1', { id: 'search-title' }, t('search.title')),
    form,
    h('div', { class: 'search-layout' }, facets, resultsColumn));

  // ----- names for filter chips -----
  const institutionNames = new Map();
  const regionLabel = (path) => formatRegion(path);
  function filterValueLabel(f, value) {
    if (VOCAB_FACETS.includes(f)) return label(t, f, value);
    if (f === 'region') return regionLabel(value);
    if (f === 'institution') return institutionNames.get(value) || value;
    if (f === 'language') return languageName(value, lang);
    if (f === 'origin') return originHost(value);
    return value;
  }
  const filterName = (f) => t(`search.facet.${f}`);

  // ----- changing the search -----
  /** Apply a change: record it in the address (a new history entry) and search again. */
  function update(change, { push = true, focus = null } = {}) {
    const nextState = { ...state, ...change };
    if (!('offset' in change)) nextState.offset = 0; // any other change starts at the first page
    state = nextState;
    const target = hashOf(state);
    if (location.hash !== target) {
      if (push) history.pushState(null, '', target); else history.replaceState(null, '', target);
    }
    search({ focus });
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    update({ q: input.value.trim() }, { focus: 'count' });
  });
  // Sorting replaces the entry: arrow keys on a closed select fire one change per step.
  sortSelect.addEventListener('change', () => {
    const value = sortSelect.value;
    const implicit = state.q ? 'relevance' : 'newest';
    update({ sort: value === implicit ? '' : value }, { push: false });
  });
  institutionSelect.addEventListener('change', () => update({ institution: institutionSelect.value }));
  prev.addEventListener('click', () => {
    update({ offset: Math.max(0, state.offset - state.limit) }, { focus: 'count' });
  });
  next.addEventListener('click', () => update({ offset: state.offset + state.limit }, { focus: 'count' }));

  // ----- facets -----
  function facetButton(f, value, n, content) {
    const pressed = state[f] === value;
    return h('button', {
      type: 'button', class: 'facet-button', 'aria-pressed': String(pressed),
      'data-facet': f, 'data-value': value,
      onclick: () => update({ [f]: pressed ? '' : value }, { focus: { facet: f, value } }),
    },
    h('span', { class: 'facet-label' }, content),
    isNumber(n) ? h('span', { class: 'facet-count' }, h('span', { class: 'visually-hidden' }, ', '), String(n)) : null);
  }

  /** {value: count} → [[value, count]], the active value included even when the server left it out. */
  function entries(f, counts) {
    const list = Object.entries(counts && typeof counts === 'object' ? counts : {})
      .filter(([value, n]) => value && isNumber(Number(n)))
      .map(([value, n]) => [value, Number(n)]);
    if (state[f] && !list.some(([value]) => value === state[f])) list.push([state[f], null]);
    return list;
  }

  function renderFacets(data) {
    const collator = new Intl.Collator(document.documentElement.lang || undefined);
    const groups = [];
    for (const f of VOCAB_FACETS) {
      const list = entries(f, data?.[f]).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1)
        || collator.compare(label(t, f, a[0]), label(t, f, b[0])));
      if (!list.length) continue;
      groups.push(facetGroup(f, list.map(([value, n]) => h('li', {}, facetButton(f, value, n, label(t, f, value))))));
    }
    const regions = entries('region', data?.region).sort((a, b) => compareRegions(a[0], b[0]));
    if (regions.length) {
      groups.push(facetGroup('region', regions.map(([path, n]) => {
        const parts = segments(path);
        const depth = Math.min(Math.max(parts.length - 1, 0), 4);
        const parents = parts.slice(0, -1);
        return h('li', { class: `facet-depth-${depth}` }, facetButton('region', path, n, [
          parents.length ? h('span', { class: 'visually-hidden' }, `${parents.join(' / ')} / `) : null,
          parts[parts.length - 1] || path,
        ]));
      }), 'facet-list-tree'));
    }
    facetsBody.replaceChildren(...groups);
  }

  function facetGroup(f, items, extraClass = '') {
    const id = `search-facet-${f}-title`;
    return h('section', { class: 'facet-group', 'aria-labelledby': id },
      h('h3', { id, class: 'facet-title' }, filterName(f)),
      h('ul', { class: `facet-list ${extraClass}`.trim() }, items));
  }

  function renderActiveFilters() {
    const active = FILTERS.filter((f) => state[f]);
    facetsToggleCount.textContent = active.length ? t('search.activeCount', { n: active.length }) : '';
    if (!active.length) { activeFilters.hidden = true; activeFilters.replaceChildren(); return; }
    const items = active.map((f) => h('li', {},
      h('button', {
        type: 'button', class: 'filter-chip', 'data-filter': f,
        onclick: () => update({ [f]: '' }, { focus: { chip: f } }),
      },
      h('span', { class: 'visually-hidden' }, `${t('search.remove')} `),
      t('search.chip', { name: filterName(f), value: filterValueLabel(f, state[f]) }),
      h('span', { class: 'filter-chip-x', 'aria-hidden': 'true' }, '×'))));
    if (active.length > 1) {
      const clear = {};
      for (const f of FILTERS) clear[f] = '';
      items.push(h('li', {}, h('button', {
        type: 'button', id: 'search-clear-filters', class: 'button button-quiet filter-clear',
        onclick: () => update(clear, { focus: 'count' }),
      }, t('search.clearAll'))));
    }
    activeFilters.hidden = false;
    activeFilters.replaceChildren(
      h('span', { class: 'active-filters-label', 'aria-hidden': 'true' }, t('search.active')),
      h('ul', { class: 'filter-chips' }, items));
  }

  // ----- results -----
  function matchLink(hit, m) {
    if (!m || typeof m !== 'object' || m.file_id === undefined || m.file_id === null) return null;
    const base = `${courseHref(hit.id)}?file=${encodeURIComponent(m.file_id)}`;
    const text = String(m.text ?? '').trim();
    let href = base;
    let where = null;
    let name;
    if (isNumber(m.at_seconds) && m.at_seconds >= 0) {
      const time = formatTime(m.at_seconds);
      href = `${base}&t=${Math.floor(m.at_seconds)}`;
      where = time;
      name = t('search.playAt', { time, text });
    } else if (isNumber(m.page) && m.page >= 1) {
      const page = Math.floor(m.page);
      href = `${base}&page=${page}`;
      where = t('search.pageShort', { n: page });
      name = t('search.openPage', { n: page, text });
    } else {
      name = t('search.openMatch', { text });
    }
    return h('li', {},
      h('a', { class: 'match-link', href, 'aria-label': name },
        where ? h('span', { class: 'match-where' }, where) : null,
        text ? h('span', { class: 'match-text' }, text) : null));
  }

  function hitItem(hit, index, localIds) {
    const id = `search-hit-${index}`;
    const region = formatRegion(hit.region);
    const meta = [hit.institution?.name ? String(hit.institution.name) : '', region].filter(Boolean).join(' · ');
    const federated = !sameServer(hit.origin, localIds);
    const snippet = renderSnippet(hit.snippet);
    const matches = (Array.isArray(hit.matches) ? hit.matches : []).map((m) => matchLink(hit, m)).filter(Boolean);
    return h('li', { class: 'card search-hit', 'aria-labelledby': `${id}-title` },
      h('h3', { id: `${id}-title`, class: 'search-hit-title' },
        h('a', { href: courseHref(hit.id) }, String(hit.title ?? ''))),
      meta || federated ? h('p', { class: 'search-hit-meta' },
        meta,
        federated ? h('span', { class: 'search-hit-origin' }, t('search.from', { host: originHost(hit.origin) })) : null)
        : null,
      chips((Array.isArray(hit.subjects) ? hit.subjects : []).map((s) => label(t, 'subject', s))),
      snippet.length ? h('p', { class: 'search-hit-snippet' }, snippet) : null,
      matches.length ? h('div', { class: 'search-hit-matches' },
        h('p', { id: `${id}-found`, class: 'found-inside' }, t('search.foundInside')),
        h('ul', { class: 'match-list', 'aria-labelledby': `${id}-found` }, matches)) : null);
  }

  function renderEmpty() {
    const hasFilters = FILTERS.some((f) => state[f]);
    if (!state.q && !hasFilters) {
      empty.replaceChildren(h('p', {}, t('search.browseEmpty')));
      return;
    }
    const tips = [t('search.tipSpelling'), t('search.tipPinyin'), t('search.tipFewer')];
    if (hasFilters) tips.push(t('search.tipFilters'));
    empty.replaceChildren(
      h('h3', { class: 'search-empty-title' }, t('search.emptyTitle')),
      h('ul', { class: 'search-tips' }, tips.map((tip) => h('li', {}, tip))));
  }

  // ----- running the search -----
  let controller = null;
  let seq = 0;

  function restoreFocus(focus) {
    if (!focus) return;
    let target = null;
    if (focus === 'count') {
      target = count;
    } else if (focus.facet) {
      target = [...facetsBody.querySelectorAll('.facet-button')]
        .find((b) => b.dataset.facet === focus.facet && b.dataset.value === focus.value)
        || facets.querySelector('.facets-title');
    } else if (focus.chip) {
      target = activeFilters.querySelector('.filter-chip') || count;
    }
    if (target) {
      target.focus({ preventScroll: true });
      if (target === count) target.scrollIntoView({ block: 'nearest' });
    }
  }

  async function search({ focus = null } = {}) {
    controller?.abort();
    const own = new AbortController();
    controller = own;
    const mySeq = ++seq;
    const onLeave = () => own.abort();
    signal.addEventListener('abort', onLeave, { once: true });

    input.value = state.q;
    sortSelect.value = effectiveSort();
    if (institutionSelect.value !== state.institution) selectInstitution(state.institution);
    renderActiveFilters();
    errorRegion.replaceChildren();
    inputError.replaceChildren();
    input.removeAttribute('aria-invalid');
    results.setAttribute('aria-busy', 'true');
    const slow = setTimeout(() => { if (mySeq === seq) count.textContent = t('search.searching'); }, SLOW_MS);

    try {
      const [res, localIds] = await Promise.all([
        api('GET', `/api/v1/search?${toParams(state, { forApi: true })}`, null, { signal: own.signal }),
        localServerIds(),
      ]);
      if (mySeq !== seq) return;
      const hits = Array.isArray(res?.hits) ? res.hits : [];
      const total = isNumber(res?.total) ? res.total : hits.length;
      results.replaceChildren(...hits.map((hit, i) => hitItem(hit, state.offset + i + 1, localIds)));
      renderFacets(res?.facets);

      let text = total === 0 ? t('search.countNone') : total === 1 ? t('search.countOne') : t('search.count', { n: total });
      if (hits.length && (state.offset > 0 || total > hits.length)) {
        text += t('search.rangeSep') + t('search.range', { from: state.offset + 1, to: state.offset + hits.length });
      }
      count.textContent = text;

      empty.hidden = hits.length > 0;
      if (!hits.length) renderEmpty();
      prev.hidden = state.offset <= 0;
      next.hidden = state.offset + hits.length >= total || hits.length === 0;
      const pages = Math.max(1, Math.ceil(total / state.limit));
      const page = Math.floor(state.offset / state.limit) + 1;
      pageInfo.textContent = page <= pages ? t('search.pageOf', { page, pages }) : '';
      pager.hidden = prev.hidden && next.hidden;
      restoreFocus(focus);
    } catch (err) {
      if (err?.name === 'AbortError' || mySeq !== seq) return;
      count.textContent = '';
      results.replaceChildren();
      facetsBody.replaceChildren();
      empty.hidden = true;
      pager.hidden = true;
      const summary = t('search.failed');
      const detail = problemText(err, t);
      // A problem about the query itself is shown at the search box too.
      const qError = (Array.isArray(err?.errors) ? err.errors : []).find((e) => e.field === 'q' && e.message);
      if (qError) {
        inputError.textContent = qError.message;
        input.setAttribute('aria-invalid', 'true');
      }
      errorRegion.replaceChildren(h('p', { class: 'form-error-summary' }, summary),
        detail && detail !== summary ? h('p', {}, detail) : null);
    } finally {
      clearTimeout(slow);
      signal.removeEventListener('abort', onLeave);
      if (mySeq === seq) results.setAttribute('aria-busy', 'false');
    }
  }

  // ----- institutions: a filter select and the names for chips -----
  function selectInstitution(slug) {
    if (slug && ![...institutionSelect.options].some((o) => o.value === slug)) {
      institutionSelect.append(h('option', { value: slug }, institutionNames.get(slug) || slug));
    }
    institutionSelect.value = slug;
  }

  api('GET', '/api/v1/institutions', null, { signal }).then((res) => {
    const institutions = Array.isArray(res?.institutions) ? res.institutions : [];
    const collator = new Intl.Collator(document.documentElement.lang || undefined);
    institutions.sort((a, b) => collator.compare(String(a.name ?? ''), String(b.name ?? '')));
    const known = new Set([...institutionSelect.options].map((o) => o.value));
    for (const inst of institutions) {
      if (!inst?.slug) continue;
      const name = String(inst.name ?? inst.slug);
      institutionNames.set(inst.slug, name);
      if (known.has(inst.slug)) {
        const option = [...institutionSelect.options].find((o) => o.value === inst.slug);
        option.textContent = name;
      } else {
        institutionSelect.append(h('option', { value: inst.slug }, name));
      }
    }
    selectInstitution(state.institution);
    if (state.institution) renderActiveFilters();
  }).catch((err) => {
    if (err?.name !== 'AbortError') console.warn('could not load institutions', err);
  });

  await search();

  // A fresh search page on a desktop: the cursor waits in the box. Not on touch
  // screens (a coarse pointer: the on-screen keyboard would cover the page), not
  // over results, and not when the user is already somewhere else (e.g. the
  // language switch re-rendered us). After the first search and a tick later,
  // because the router focuses the <h1> once render() resolves.
  if (!state.q && !window.matchMedia?.('(pointer: coarse)').matches) {
    setTimeout(() => {
      if (signal.aborted) return;
      const active = document.activeElement;
      if (!active || active === document.body || active.id === 'main' || active.id === 'search-title') input.focus();
    }, 0);
  }
}
