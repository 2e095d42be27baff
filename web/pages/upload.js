// Publishing, for staff of an institution:
//   #/upload              — (a) create a course, then go on to (b)
//   #/upload?course=<id>  — (b) add files to it, one after another, with progress
// Files go up through uploader.js (XMLHttpRequest, for progress events).

import { h, formField, showProblem, clearProblem, setPending, problemText } from '../dom.js';
import { ApiError } from '../api.js';
import {
  SUBJECTS, AUDIENCES, LEVELS, label, formatSize, splitList, courseHref, loadMemberships, canPublishFor,
} from '../courseware.js';
import { enqueue, attach, isRunning, resultsFor } from '../uploader.js';

export async function render(container, ctx) {
  const { t, session, query } = ctx;
  if (!session.user) {
    container.append(h('section', { class: 'card narrow' },
      h('h1', {}, t('upload.title')),
      h('p', {}, t('upload.signInFirst')),
      h('p', {}, h('a', { class: 'button button-primary', href: '#/signin' }, t('header.signIn')))));
    return;
  }
  const courseId = query.get('course');
  if (courseId) await renderFiles(container, ctx, courseId);
  else await renderCreate(container, ctx);
}

// ---------- (a) create a course ----------

function selectField({ id, label: text, options, value }) {
  const error = h('p', { id: `${id}-error`, class: 'field-error' });
  const input = h('select', { id, name: id, required: true, 'aria-describedby': error.id },
    options.map((o) => h('option', { value: o.value, selected: o.value === value }, o.text)));
  return { wrapper: h('div', { class: 'field' }, h('label', { for: id }, text), input, error), input, error };
}

function checkboxField({ id, legend, values, group, t }) {
  const error = h('p', { id: `${id}-error`, class: 'field-error' });
  const boxes = values.map((v) => h('input', { type: 'checkbox', id: `${id}-${v}`, name: id, value: v }));
  const wrapper = h('fieldset', { id, class: 'field choices', 'aria-describedby': error.id },
    h('legend', {}, legend),
    h('div', { class: 'choice-grid' }, boxes.map((box, i) => h('label', { class: 'choice', for: box.id },
      box, h('span', {}, label(t, group, values[i]))))),
    error);
  return { wrapper, input: boxes[0], error, checked: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

async function renderCreate(container, { api, t, session, signal, navigate }) {
  const memberships = await loadMemberships(api, session, signal);
  let choices = memberships
    .filter((m) => m?.institution?.slug && canPublishFor(session, [m], m.institution.slug))
    .map((m) => ({ value: m.institution.slug, text: String(m.institution.name ?? m.institution.slug) }));
  if (session.user.is_admin) {
    const res = await api('GET', '/api/v1/institutions', null, { signal });
    choices = (res?.institutions || []).map((i) => ({ value: i.slug, text: String(i.name ?? i.slug) }));
  }
  const heading = h('h1', { id: 'upload-title' }, t('upload.createTitle'));
  if (!choices.length) {
    container.append(h('section', { class: 'card narrow' }, heading, h('p', { id: 'upload-no-institution' }, t('upload.noInstitution'))));
    return;
  }

  const fields = {
    institution: selectField({ id: 'course-institution', label: t('upload.institution'), options: choices }),
    title: formField({ id: 'course-title-input', label: t('upload.courseTitle'), autocomplete: 'off' }),
    description: (() => {
      const error = h('p', { id: 'course-description-error', class: 'field-error' });
      const input = h('textarea', { id: 'course-description', name: 'course-description', rows: '6', 'aria-describedby': error.id });
      return { wrapper: h('div', { class: 'field' }, h('label', { for: input.id }, t('upload.description')), input, error), input, error };
    })(),
    subjects: checkboxField({ id: 'course-subjects', legend: t('upload.subjects'), values: SUBJECTS, group: 'subject', t }),
    audience: checkboxField({ id: 'course-audience', legend: t('upload.audience'), values: AUDIENCES, group: 'audience', t }),
    level: selectField({
      id: 'course-level', label: t('upload.level'), value: 'beginner',
      options: LEVELS.map((l) => ({ value: l, text: label(t, 'level', l) })),
    }),
    languages: formField({
      id: 'course-languages', label: t('upload.languages'), hint: t('upload.languagesHint'), autocomplete: 'off',
      attrs: { value: 'zh' },
    }),
    license: formField({
      id: 'course-license', label: t('upload.license'), hint: t('upload.licenseHint'), autocomplete: 'off',
      attrs: { value: 'CC-BY-4.0' },
    }),
    tags: formField({ id: 'course-tags', label: t('upload.tags'), hint: t('upload.tagsHint'), autocomplete: 'off', required: false }),
    credits: formField({
      id: 'course-credits', label: t('upload.credits'), hint: t('upload.creditsHint'), type: 'number',
      attrs: { value: '0', min: '0', step: 'any', inputmode: 'decimal' },
    }),
  };
  const errorRegion = h('div', { id: 'course-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'course-submit', class: 'button button-primary' }, t('upload.create'));
  const form = h('form', { id: 'course-form', class: 'form', 'aria-labelledby': 'upload-title' },
    Object.values(fields).map((f) => f.wrapper), errorRegion, h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('upload.creating'));
    clearProblem(errorRegion, fields);
    const credits = fields.credits.input.value.trim();
    const body = {
      institution: fields.institution.input.value,
      title: fields.title.input.value.trim(),
      description: fields.description.input.value.trim(),
      subjects: fields.subjects.checked(),
      audience: fields.audience.checked(),
      level: fields.level.input.value,
      languages: splitList(fields.languages.input.value),
      license: fields.license.input.value.trim(),
      tags: splitList(fields.tags.input.value),
      credits: credits === '' ? 0 : Number(credits),
    };
    try {
      const created = await api('POST', '/api/v1/courses', body);
      navigate(`/upload?course=${encodeURIComponent(created.id)}`);
    } catch (err) {
      showProblem(errorRegion, err, { t, fields, summary: t('upload.createFailed') });
    } finally {
      pending = false;
      setPending(submit, false, t('upload.create'));
    }
  });

  container.append(h('section', { class: 'card form-card' }, heading, h('p', {}, t('upload.createLead')), form));
}

// ---------- (b) files ----------

function failureText(err, t) {
  if (err.detail) return err.detail;
  const known = { 401: 'upload.signedOut', 403: 'upload.forbidden', 409: 'upload.conflict', 413: 'upload.tooLarge', 415: 'upload.badType', 422: 'upload.badName' };
  return known[err.status] ? t(known[err.status]) : problemText(err, t);
}

async function renderFiles(container, { api, t, session, signal, announce, lang }, courseId) {
  const path = `/api/v1/courses/${encodeURIComponent(courseId)}`;
  let course;
  let memberships;
  try {
    [course, memberships] = await Promise.all([api('GET', path, null, { signal }), loadMemberships(api, session, signal)]);
  } catch (err) {
    if (!(err instanceof ApiError) || ![400, 404, 410, 422].includes(err.status)) throw err;
    container.append(h('section', { class: 'card narrow' }, h('h1', {}, t('course.notFound')),
      h('p', {}, t('course.notFoundBody')), h('p', {}, h('a', { href: '#/upload' }, t('upload.createTitle')))));
    return;
  }

  const input = h('input', { type: 'file', id: 'upload-input', multiple: true, 'aria-describedby': 'upload-hint' });
  const dropzone = h('div', {
    id: 'upload-dropzone', class: 'dropzone', role: 'button', tabindex: '0', 'aria-describedby': 'upload-hint',
  }, h('span', { class: 'dropzone-icon', 'aria-hidden': 'true' }, '⇪'), h('span', {}, t('upload.dropzone')));
  const progress = h('progress', { id: 'upload-progress', max: '100', value: '0', 'aria-labelledby': 'upload-progress-label' });
  const status = h('p', { id: 'upload-status', class: 'upload-status', role: 'status', 'aria-live': 'polite' });
  const results = h('ul', { id: 'upload-results', class: 'upload-results' });
  const viewLink = h('a', { id: 'view-course-link', class: 'button button-primary', href: courseHref(course.id), hidden: true },
    t('upload.viewCourse'));
  const fileListSlot = h('div', { class: 'upload-files' });
  const listError = h('div', { id: 'upload-file-error', class: 'form-error', role: 'alert' });

  function showFiles(files) {
    if (!files.length) {
      fileListSlot.replaceChildren(h('p', { id: 'upload-file-list', class: 'muted' }, t('course.noFiles')));
      return;
    }
    fileListSlot.replaceChildren(h('ul', { id: 'upload-file-list', class: 'file-list' }, files.map((f) => h('li', { class: 'file-item' },
      h('a', { class: 'file-name', href: `/media/${encodeURIComponent(f.id)}` }, String(f.name ?? '')),
      h('span', { class: 'file-kind' }, label(t, 'kind', f.kind)),
      h('span', { class: 'file-size' }, formatSize(f.size, lang)),
      h('button', {
        type: 'button', class: 'button button-quiet file-delete', 'aria-label': t('upload.deleteFile', { name: f.name }),
        onclick: () => removeFile(f),
      }, t('upload.delete'))))));
  }

  async function refreshFiles() {
    try {
      const fresh = await api('GET', path, null, { signal });
      showFiles(Array.isArray(fresh?.files) ? fresh.files : []);
    } catch (err) {
      if (err?.name !== 'AbortError') listError.replaceChildren(h('p', {}, problemText(err, t)));
    }
  }

  async function removeFile(file) {
    if (!window.confirm(t('upload.deleteConfirm', { name: file.name }))) return;
    listError.replaceChildren();
    try {
      await api('DELETE', `/api/v1/files/${encodeURIComponent(file.id)}`);
      announce(t('upload.deleted', { name: file.name }));
      await refreshFiles();
      document.getElementById('upload-input')?.focus();
    } catch (err) {
      listError.replaceChildren(h('p', { class: 'form-error-summary' }, t('upload.deleteFailed', { name: file.name })),
        h('p', {}, problemText(err, t)));
    }
  }

  function resultItem(r) {
    const text = r.ok ? t(r.status === 200 ? 'upload.unchanged' : 'upload.done', { name: r.name })
      : t('upload.failed', { name: r.name, reason: failureText(r.error, t) });
    return { text, node: h('li', { class: r.ok ? 'result-ok' : 'result-error' }, text) };
  }

  let lastStep = -1;
  const view = {
    started(item, { index, total }) {
      progress.value = 0;
      lastStep = -1;
      viewLink.hidden = true;
      status.textContent = t('upload.sending', { name: item.file.name, index, total });
    },
    progress(item, { index, total }, loaded, size) {
      const percent = size > 0 ? Math.min(100, Math.floor((loaded / size) * 100)) : 0;
      progress.value = percent;
      // The live region speaks at each tenth, not on every progress event.
      const step = Math.floor(percent / 10);
      if (step === lastStep) return;
      lastStep = step;
      status.textContent = t('upload.percent', {
        name: item.file.name, index, total, percent, sent: formatSize(loaded, lang), size: formatSize(size, lang),
      });
    },
    finished(entry) {
      const { text, node } = resultItem(entry);
      results.append(node);
      status.textContent = text;
      if (entry.ok) progress.value = 100;
    },
    async idle(batch) {
      await refreshFiles();
      const failed = batch.filter((r) => !r.ok).length;
      status.textContent = t('upload.allDone', { ok: batch.length - failed, failed });
      viewLink.hidden = false;
    },
  };
  const key = String(course.id);
  const mine = (x) => x.courseId === key;
  const attached = {
    started: (item, position) => mine(item) && view.started(item, position),
    progress: (item, position, loaded, size) => mine(item) && view.progress(item, position, loaded, size),
    finished: (entry) => mine(entry) && view.finished(entry),
    idle: (batch) => batch.some(mine) && view.idle(batch.filter(mine)),
  };
  signal.addEventListener('abort', attach(attached));
  for (const r of resultsFor(key)) results.append(resultItem(r).node);
  if (results.childElementCount && !isRunning()) viewLink.hidden = false;
  const add = (files) => enqueue(key, files);

  input.addEventListener('change', () => { add(input.files); input.value = ''; });
  dropzone.addEventListener('click', () => input.click());
  dropzone.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); input.click(); }
  });
  for (const type of ['dragenter', 'dragover']) {
    dropzone.addEventListener(type, (event) => { event.preventDefault(); dropzone.classList.add('is-dragover'); });
  }
  dropzone.addEventListener('dragleave', (event) => {
    if (!dropzone.contains(event.relatedTarget)) dropzone.classList.remove('is-dragover');
  });
  dropzone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropzone.classList.remove('is-dragover');
    add(event.dataTransfer?.files || []);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  document.addEventListener('dragover', (event) => {
    event.preventDefault();
    if (event.dataTransfer && !dropzone.contains(event.target)) event.dataTransfer.dropEffect = 'none';
  }, { signal });
  document.addEventListener('drop', (event) => event.preventDefault(), { signal });

  showFiles(Array.isArray(course.files) ? course.files : []);
  const mayPublish = canPublishFor(session, memberships, course.institution?.slug);
  container.append(h('section', { class: 'card upload' },
    h('h1', { id: 'upload-title' }, t('upload.filesTitle')),
    h('p', { class: 'upload-course' }, `${t('upload.forCourse')} `, h('strong', { id: 'upload-course-title' }, String(course.title ?? ''))),
    mayPublish ? null : h('p', { class: 'note' }, t('upload.mayNotPublish')),
    dropzone,
    h('p', { id: 'upload-hint', class: 'field-hint' }, t('upload.hint')),
    h('div', { class: 'field' }, h('label', { for: 'upload-input' }, t('upload.choose')), input),
    h('div', { class: 'upload-progress' },
      h('span', { id: 'upload-progress-label', class: 'visually-hidden' }, t('upload.progress')), progress),
    status, results, h('p', {}, viewLink)),
  h('section', { class: 'card upload-current', 'aria-labelledby': 'upload-files-heading' },
    h('h2', { id: 'upload-files-heading' }, t('upload.currentFiles')), listError, fileListSlot));
}
