// Uploads files to a course one after another with XMLHttpRequest, because
// fetch() reports no upload progress. The queue lives in this module, not in a
// page: it outlives one rendering of the upload page (a language switch
// re-renders it), and each rendering attaches itself as the view:
//   {started(item, position), progress(item, position, loaded, total), finished(entry), idle(batch)}
// item = {courseId, file}; entry = {courseId, name, ok, status?, file?, error?: ApiError}.

import { ApiError } from './api.js';

const uploads = { queue: [], running: false, results: [], view: null, total: 0, done: 0 };

function warnBeforeUnload(event) { event.preventDefault(); event.returnValue = ''; }

function put(item, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/v1/courses/${encodeURIComponent(item.courseId)}/files/${encodeURIComponent(item.file.name)}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', item.file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : item.file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve({ ok: true, status: xhr.status, file: body }); return; }
      const p = body && typeof body === 'object' ? body : {};
      resolve({ ok: false, error: new ApiError({
        status: xhr.status,
        title: typeof p.title === 'string' ? p.title : xhr.statusText,
        detail: typeof p.detail === 'string' ? p.detail : '',
        errors: Array.isArray(p.errors) ? p.errors : [],
      }) });
    });
    xhr.addEventListener('error', () => resolve({ ok: false, error: new ApiError({ status: 0 }) }));
    xhr.addEventListener('abort', () => resolve({ ok: false, error: new ApiError({ status: 0 }) }));
    xhr.send(item.file);
  });
}

async function run() {
  if (uploads.running) return;
  uploads.running = true;
  window.addEventListener('beforeunload', warnBeforeUnload);
  while (uploads.queue.length) {
    const item = uploads.queue.shift();
    const position = { index: uploads.done + 1, total: uploads.total };
    uploads.view?.started(item, position);
    const result = await put(item, (loaded, total) => uploads.view?.progress(item, position, loaded, total));
    uploads.done += 1;
    const entry = { courseId: item.courseId, name: item.file.name, ...result };
    uploads.results.push(entry);
    uploads.view?.finished(entry);
  }
  window.removeEventListener('beforeunload', warnBeforeUnload);
  uploads.running = false;
  const batch = uploads.results.slice(-uploads.total);
  uploads.total = 0;
  uploads.done = 0;
  uploads.view?.idle(batch);
}

/** Queue files for a course; they start at once unless others are still going. */
export function enqueue(courseId, files) {
  const list = [...files];
  if (!list.length) return;
  uploads.queue.push(...list.map((file) => ({ courseId, file })));
  uploads.total += list.length;
  run();
}

/** Attach a view; returns a function that detaches it (if still attached). */
export function attach(view) {
  uploads.view = view;
  return () => { if (uploads.view === view) uploads.view = null; };
}

export function isRunning() { return uploads.running; }

/** Results of this session's uploads for one course, oldest first. */
export function resultsFor(courseId) { return uploads.results.filter((r) => r.courseId === courseId); }
