// Learning circles: the public circles and the private ones you belong to, and
// (signed in) a form to start a new one, which then opens its page.

import { h, formField, showProblem, clearProblem, setPending, problemText } from '../dom.js';

export const VISIBILITIES = ['public', 'private'];

export const circleHref = (id) => `#/circles/${encodeURIComponent(id)}`;

/** The "Public" / "Private" badge of a circle. */
export function visibilityBadge(t, visibility) {
  const v = VISIBILITIES.includes(visibility) ? visibility : 'public';
  return h('span', { class: `badge badge-${v}` }, t(`circles.visibility.${v}`));
}

function createForm({ api, t, navigate, announce }) {
  const name = formField({
    id: 'circle-name', label: t('circles.name'), autocomplete: 'off', hint: t('circles.nameHint'),
    attrs: { maxlength: '80' },
  });
  const description = (() => {
    const id = 'circle-description';
    const hint = h('p', { id: `${id}-hint`, class: 'field-hint' }, t('circles.descriptionHint'));
    const error = h('p', { id: `${id}-error`, class: 'field-error' });
    const input = h('textarea', {
      id, name: id, rows: '4', maxlength: '2000', 'aria-describedby': `${hint.id} ${error.id}`,
    });
    return { wrapper: h('div', { class: 'field' }, h('label', { for: id }, t('circles.description')), hint, input, error), input, error };
  })();
  const visibility = (() => {
    const id = 'circle-visibility';
    const hint = h('p', { id: `${id}-hint`, class: 'field-hint' }, t('circles.visibilityHint'));
    const error = h('p', { id: `${id}-error`, class: 'field-error' });
    const input = h('select', { id, name: id, 'aria-describedby': `${hint.id} ${error.id}` },
      VISIBILITIES.map((v) => h('option', { value: v }, t(`circles.visibility.${v}`))));
    return { wrapper: h('div', { class: 'field' }, h('label', { for: id }, t('circles.visibility')), hint, input, error), input, error };
  })();
  // Server field names → form fields, for 422 `errors: [{field, message}]`.
  const fields = { name, description, visibility };
  const errorRegion = h('div', { id: 'circle-form-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'circle-submit', class: 'button button-primary' }, t('circles.submit'));
  const form = h('form', { id: 'circle-form', class: 'form', 'aria-labelledby': 'circle-form-title' },
    name.wrapper, description.wrapper, visibility.wrapper, errorRegion,
    h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('circles.pending'));
    clearProblem(errorRegion, fields);
    try {
      const circle = await api('POST', '/api/v1/circles', {
        name: name.input.value.trim(),
        description: description.input.value.trim(),
        visibility: visibility.input.value,
      });
      announce(t('circles.created', { name: String(circle?.name ?? '') }));
      navigate(`/circles/${encodeURIComponent(circle.id)}`);
    } catch (err) {
      showProblem(errorRegion, err, { t, fields, summary: t('circles.failed') });
    } finally {
      pending = false;
      setPending(submit, false, t('circles.submit'));
    }
  });

  return h('section', { class: 'card form-card circle-create', 'aria-labelledby': 'circle-form-title' },
    h('h2', { id: 'circle-form-title' }, t('circles.createTitle')),
    form);
}

export async function render(container, ctx) {
  const { api, t, session, signal } = ctx;

  const list = h('ul', { id: 'circle-list', class: 'circle-list', 'aria-label': t('circles.listLabel') });
  const errorRegion = h('div', { id: 'circles-error', class: 'form-error', role: 'alert' });
  const create = session.user ? createForm(ctx)
    : h('p', { id: 'circles-signin', class: 'note' }, `${t('circles.signInToCreate')} `,
      h('a', { href: '#/signin' }, t('header.signIn')));

  container.append(
    h('h1', { id: 'circles-title' }, t('circles.title')),
    h('p', { class: 'lead' }, t('circles.lead')),
    errorRegion, list, create);

  let circles = [];
  try {
    const res = await api('GET', '/api/v1/circles', null, { signal });
    circles = Array.isArray(res?.circles) ? res.circles : [];
  } catch (err) {
    if (err?.name === 'AbortError') return;
    errorRegion.replaceChildren(h('p', { class: 'form-error-summary' }, t('circles.loadFailed')),
      h('p', {}, problemText(err, t)));
    return;
  }
  if (!circles.length) {
    list.after(h('p', { id: 'circles-empty', class: 'muted' }, t('circles.empty')));
    return;
  }
  list.replaceChildren(...circles.map((c) => {
    const description = String(c.description ?? '').trim();
    return h('li', { class: 'card circle-item' },
      h('h2', { class: 'circle-item-title' },
        h('a', { href: circleHref(c.id) }, String(c.name ?? ''))),
      h('p', { class: 'circle-item-meta' }, visibilityBadge(t, c.visibility)),
      h('p', { class: `circle-item-description${description ? '' : ' muted'}` },
        description || t('circles.noDescription')));
  }));
}
