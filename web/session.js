// Who is signed in. The server keeps the session in an HttpOnly cookie, so
// the page never stores a token; it only mirrors the user JSON from /me.

import { api, ApiError } from './api.js';

let user = null; // {id, email, display_name, is_admin, created_at} or null
let loaded = false;
const listeners = new Set();

function setUser(next) {
  user = next ?? null;
  loaded = true;
  for (const fn of listeners) fn(user);
}

export const session = {
  /** The signed-in user, or null. */
  get user() { return user; },
  get signedIn() { return user !== null; },
  /** True once /me has answered at least once. */
  get loaded() { return loaded; },

  /** Call fn(user) after every change; returns an unsubscribe function. */
  subscribe(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },

  /** GET /api/v1/me: 200 → user, 401 → signed out. Other failures throw. */
  async refresh() {
    try {
      setUser(await api('GET', '/api/v1/me'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setUser(null);
      else throw err;
    }
    return user;
  },

  /** POST /api/v1/auth/login; the server sets the session cookie. */
  async signIn(email, password) {
    const res = await api('POST', '/api/v1/auth/login', { email, password });
    if (res && res.user) setUser(res.user);
    else await session.refresh();
    return user;
  },

  /** POST /api/v1/auth/logout. A 401 means we were already signed out. */
  async signOut() {
    try {
      await api('POST', '/api/v1/auth/logout');
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) throw err;
    }
    setUser(null);
  },

  /** POST /api/v1/auth/register → 201 user. Does not sign in. */
  register(email, password, display_name) {
    return api('POST', '/api/v1/auth/register', { email, password, display_name });
  },
};
