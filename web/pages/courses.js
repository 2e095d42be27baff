// Course catalog: filter by institution and subject, then "load more" through
// next_cursor. The filters live in the address (#/courses?institution=&subject=)
// so a filtered list can be shared and survives a language switch.

import { h, problemText } from '../dom.js';
import { SUBJECTS, label, formatRegion, courseHref, chips } from '../courseware.js';

const PAGE_SIZE = 20;

export async function render(container, { api, t, query, signal, announce }) {
  const chosen = {
    institution: query.get('institution') || '',
    subject: query.get('subject') || '',
  };

  const institutionSelect = h('select', { id: 'courses-institution', name: 'institution' },
    h('option', { value: '' }, t('courses.allInstitutions')));
  const subjectSelect = h('select', { id: 'courses-subject', name: 'subject' },
    h('option', { value: '' }, t('courses.allSubjects')),
    SUBJECTS.map((s) => h('option', { value: s, selected: s === chosen.subject }, label(t, 'subject', s))));

  const filterForm = h('form', { id: 'courses-filter', class: 'filter-bar', role: 'search', 'aria-label': t('courses.filter') },
    h('div', { class: 'field' }, h('label', { for: 'courses-institution' }, t('courses.institution')), institutionSelect),
    h('div', { class: 'field' }, h('label', { for: 'courses-subject' }, t('courses.subject')), subjectSelect),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', id: 'courses-apply', class: 'button button-primary' }, t('courses.apply'))));

  const summary = h('p', { id: 'courses-summary', class: 'list-summary' });
  const list = h('ul', { id: 'course-list', class: 'course-list', 'aria-labelledby': 'courses-title' });
  const errorRegion = h('div', { id: 'courses-error', class: 'form-error', role: 'alert' });
  const more = h('button', { type: 'button', id: 'courses-more', class: 'button button-quiet', hidden: true },
    t('courses.loadMore'));

  container.append(
    h('h1', { id: 'courses-title' }, t('courses.title')),
    h('p', { class: 'lead' }, t('courses.lead')),
    filterForm, summary, errorRegion, list,
    h('div', { class: 'list-more' }, more));

  let cursor = null;
  let shown = 0;
  let loading = false;
  let listSeq = 0;

  function item(course) {
    const metaParts = [course.institution?.name, formatRegion(course.region),
      course.level ? label(t, 'level', course.level) : ''].filter(Boolean);
    return h('li', { class: 'card course-item' },
      h('h2', { class: 'course-item-title' }, h('a', { href: courseHref(course.id) }, String(course.title ?? ''))),
      metaParts.length ? h('p', { class: 'course-item-meta' }, metaParts.join(' · ')) : null,
      chips((course.subjects || []).map((s) => label(t, 'subject', s))));
  }

  async function load({ append, speak = true }) {
    if (loading && append) return;
    const seq = ++listSeq;
    loading = true;
    more.setAttribute('aria-disabled', 'true');
    more.textContent = t('status.loading');
    errorRegion.replaceChildren();
    const params = new URLSearchParams();
    if (chosen.institution) params.set('institution', chosen.institution);
    if (chosen.subject) params.set('subject', chosen.subject);
    if (append && cursor) params.set('cursor', cursor);
    params.set('limit', String(PAGE_SIZE));
    try {
      const res = await api('GET', `/api/v1/courses?${params}`, null, { signal });
      if (seq !== listSeq) return;
      const courses = Array.isArray(res?.courses) ? res.courses : [];
      const items = courses.map(item);
      if (append) list.append(...items); else list.replaceChildren(...items);
      shown = append ? shown + courses.length : courses.length;
      cursor = res?.next_cursor || null;
      more.hidden = !cursor;
      summary.textContent = shown ? t('courses.count', { n: shown }) : t('courses.empty');
      if (append && items.length) {
        // Keyboard users continue from the first newly loaded course.
        items[0].querySelector('a').focus();
      }
      if (speak) announce(summary.textContent);
    } catch (err) {
      if (err?.name === 'AbortError' || seq !== listSeq) return;
      errorRegion.replaceChildren(h('p', { class: 'form-error-summary' }, t('courses.loadFailed')),
        h('p', {}, problemText(err, t)));
    } finally {
      if (seq === listSeq) {
        loading = false;
        more.setAttribute('aria-disabled', 'false');
        more.textContent = t('courses.loadMore');
      }
    }
  }

  more.addEventListener('click', () => load({ append: true }));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    chosen.institution = institutionSelect.value;
    chosen.subject = subjectSelect.value;
    const params = new URLSearchParams();
    if (chosen.institution) params.set('institution', chosen.institution);
    if (chosen.subject) params.set('subject', chosen.subject);
    const qs = params.toString();
    // Record the filter in the address without re-rendering the page (no hashchange).
    history.replaceState(null, '', `#/courses${qs ? `?${qs}` : ''}`);
    cursor = null;
    load({ append: false });
  });

  // The institution names come from the server; the list does not wait for them.
  api('GET', '/api/v1/institutions', null, { signal }).then((res) => {
    const institutions = Array.isArray(res?.institutions) ? res.institutions : [];
    const collator = new Intl.Collator(document.documentElement.lang || undefined);
    institutions.sort((a, b) => collator.compare(String(a.name ?? ''), String(b.name ?? '')));
    for (const inst of institutions) {
      institutionSelect.append(h('option', { value: inst.slug, selected: inst.slug === chosen.institution },
        String(inst.name ?? inst.slug)));
    }
    // A slug from the address that the server does not list still filters.
    if (chosen.institution && institutionSelect.value !== chosen.institution) {
      institutionSelect.append(h('option', { value: chosen.institution, selected: true }, chosen.institution));
    }
  }).catch((err) => {
    if (err?.name !== 'AbortError') console.warn('could not load institutions', err);
  });

  await load({ append: false, speak: false });
}
