// JSON API helper. Errors from the server are RFC 9457 application/problem+json;
// api() turns any non-2xx response into an ApiError that pages can show.

export class ApiError extends Error {
  /**
   * @param {{status:number, title?:string, detail?:string, type?:string,
   *          errors?:{field:string, message:string}[]}} problem
   * status 0 means the request never reached the server (network failure).
   */
  constructor({ status, title = '', detail = '', type = '', errors = [] }) {
    super(detail || title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
    this.errors = errors;
  }
}

/** Accept `[{field, message}]` (the contract) and, defensively, `{field: msg | [msg]}`. */
function normalizeErrors(errors) {
  if (Array.isArray(errors)) {
    return errors
      .filter((e) => e && typeof e === 'object')
      .map((e) => ({ field: String(e.field ?? ''), message: String(e.message ?? e.detail ?? '') }));
  }
  if (errors && typeof errors === 'object') {
    return Object.entries(errors).flatMap(([field, msgs]) =>
      (Array.isArray(msgs) ? msgs : [msgs]).map((m) => ({ field, message: String(m) })));
  }
  return [];
}

async function problemFrom(res) {
  let body = null;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON: fall back to the status line */ }
  const p = body && typeof body === 'object' ? body : {};
  return new ApiError({
    status: res.status,
    title: typeof p.title === 'string' ? p.title : res.statusText,
    detail: typeof p.detail === 'string' ? p.detail : '',
    type: typeof p.type === 'string' ? p.type : '',
    errors: normalizeErrors(p.errors),
  });
}

/**
 * api('GET', '/api/v1/me') → parsed JSON (or null for an empty body).
 * body: a plain object is sent as JSON; FormData/Blob are sent as is.
 * opts.signal: an AbortSignal (pass ctx.signal from a page).
 */
export async function api(method, path, body, { signal } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json, application/problem+json' },
    signal,
  };
  if (body !== undefined && body !== null) {
    if (body instanceof FormData || body instanceof Blob) {
      init.body = body;
    } else {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError({ status: 0, title: 'network error' });
  }
  if (!res.ok) throw await problemFrom(res);
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? JSON.parse(text) : text;
}
