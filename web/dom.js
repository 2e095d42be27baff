// Small DOM helpers. Everything here builds nodes with createElement and
// text nodes; no function in this file parses a string as HTML.

import { ApiError } from './api.js';

const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'poster', 'xlink:href']);
const SAFE_SCHEME = /^(?:https?|mailto|tel|blob):/i;

/** Reject javascript:, data: and other schemes in URL attributes. */
function safeUrl(value) {
  const v = String(value).trim();
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(v.replace(/[\u0000-\u001f\s]/g, ''));
  if (scheme && !SAFE_SCHEME.test(scheme[0])) return '#';
  return v;
}

/**
 * h('a', {href: '#/', class: 'x', onclick: fn}, 'text', childNode, [more])
 * - props: `class`, `text` (textContent), `onxxx` (function → listener),
 *   true → empty attribute, false/null/undefined → omitted, else setAttribute.
 * - children: strings become text nodes; null/false are skipped; arrays flatten.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`h(): ${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, URL_ATTRS.has(key) ? safeUrl(value) : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Say something to screen readers through the page-wide polite #status region. */
export function announce(message) {
  const region = document.getElementById('status');
  if (!region) return;
  region.textContent = '';
  // A fresh text change after a tick makes repeated messages announce again.
  setTimeout(() => { region.textContent = message; }, 50);
}

/** A localized, human sentence for any error thrown by api() or elsewhere. */
export function problemText(err, t, statusMessages = {}) {
  if (!(err instanceof ApiError)) return t('error.generic');
  if (statusMessages[err.status]) return statusMessages[err.status];
  if (err.status === 0) return t('error.network');
  if (err.detail) return err.detail;
  if (err.status === 429) return t('error.tooMany');
  if (err.status >= 500 || !err.title) return t('error.generic');
  return err.title;
}

/**
 * A labelled input with a hint and an error slot, wired with for/id and
 * aria-describedby. Returns {wrapper, input, error}.
 */
export function formField({ id, label, type = 'text', autocomplete, required = true, hint, attrs = {} }) {
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const input = h('input', {
    id, name: id, type, autocomplete, required,
    'aria-describedby': hint ? `${hintId} ${errorId}` : errorId,
    ...attrs,
  });
  const error = h('p', { id: errorId, class: 'field-error' });
  const wrapper = h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { id: hintId, class: 'field-hint' }, hint) : null,
    input,
    error);
  return { wrapper, input, error };
}

/** Clear the error region and all field errors of a form. */
export function clearProblem(region, fields = {}) {
  region.replaceChildren();
  for (const f of Object.values(fields)) {
    f.error.replaceChildren();
    f.input.removeAttribute('aria-invalid');
  }
}

/**
 * Show an error: a localized summary and the server's detail in `region`
 * (an aria-live/alert element), and each `errors[{field, message}]` next to
 * its input. fields maps server field names to formField() results.
 */
export function showProblem(region, err, { t, summary, fields = {}, statusMessages = {} }) {
  clearProblem(region, fields);
  const text = problemText(err, t, statusMessages);
  const unmatched = [];
  let firstInvalid = null;
  for (const { field, message } of err instanceof ApiError ? err.errors : []) {
    const f = fields[field];
    if (f) {
      f.error.append(message ? `${f.error.textContent ? ' ' : ''}${message}` : '');
      f.input.setAttribute('aria-invalid', 'true');
      firstInvalid ??= f.input;
    } else if (message) {
      unmatched.push(field ? `${field}: ${message}` : message);
    }
  }
  const nodes = [h('p', { class: 'form-error-summary' }, summary)];
  if (text && text !== summary) nodes.push(h('p', {}, text));
  else if (firstInvalid) nodes.push(h('p', {}, t('form.fixFields')));
  if (unmatched.length) nodes.push(h('ul', {}, unmatched.map((m) => h('li', {}, m))));
  region.replaceChildren(...nodes);
  if (firstInvalid) firstInvalid.focus();
}

/** Mark a submit button busy without disabling it (disabling drops focus). */
export function setPending(button, pending, label) {
  button.setAttribute('aria-disabled', pending ? 'true' : 'false');
  button.textContent = label;
}
