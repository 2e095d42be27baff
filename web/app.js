/**
 * Shuyuan web shell: hash router, header (nav, language, large text, user).
 *
 * ADDING A PAGE (a later capability needs one file and one line):
 *   1. web/pages/<name>.js exports
 *        export async function render(container, ctx) { ... }
 *      ctx = { api, t, session, navigate, params, query, signal, announce, setTitle }
 *        params  — from `:name` segments of the route pattern, e.g. {id: '…'}
 *        query   — URLSearchParams of `#/path?a=b`
 *        signal  — AbortSignal fired when the user leaves the page (or the page
 *                  re-renders on language change): pass it to api(), close sockets on it
 *      Build DOM with createElement/textContent (dom.js `h`); never innerHTML with data.
 *   2. add one line to `routes` below, e.g.
 *        '/courses/:id': { name: 'course', load: () => import('./pages/course.js') },
 *      `nav: 'i18n.key'` also lists the route in the header nav (`signedIn: true`: only
 *      for a signed-in user; `admin: true`: only for a site administrator). Add strings
 *      to i18n.js.
 * When render() resolves, <main> gets data-page="<name>"; document.title comes from
 * the page's first <h1> unless it calls ctx.setTitle(text).
 */

import { api } from './api.js';
import { t, getLang, setLang, onLangChange } from './i18n.js';
import { session } from './session.js';
import { h, announce, problemText } from './dom.js';

const routes = {
  '/': { name: 'home', nav: 'nav.home', load: () => import('./pages/home.js') },
  '/search': { name: 'search', nav: 'nav.search', load: () => import('./pages/search.js') },
  '/signin': { name: 'signin', load: () => import('./pages/signin.js') },
  '/register': { name: 'register', load: () => import('./pages/register.js') },
  '/courses': { name: 'courses', nav: 'nav.courses', load: () => import('./pages/courses.js') },
  '/courses/:id': { name: 'course', load: () => import('./pages/course.js') },
  '/circles': { name: 'circles', nav: 'nav.circles', load: () => import('./pages/circles.js') },
  '/circles/:id': { name: 'circle', load: () => import('./pages/circle.js') },
  '/upload': { name: 'upload', nav: 'nav.upload', signedIn: true, load: () => import('./pages/upload.js') },
  '/peers': { name: 'peers', nav: 'nav.peers', admin: true, load: () => import('./pages/peers.js') },
};

const notFoundRoute = { name: 'not-found', load: async () => ({ render: renderNotFound }) };

const BRAND = '书院 Shuyuan';
const LARGE_TEXT_KEY = 'shuyuan.largeText';
const main = document.getElementById('main');

// ---------- routing ----------

function parseHash() {
  const hash = location.hash.slice(1);
  const q = hash.indexOf('?');
  let path = (q === -1 ? hash : hash.slice(0, q)) || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { path, query: new URLSearchParams(q === -1 ? '' : hash.slice(q + 1)) };
}

function matchRoute(path) {
  if (Object.hasOwn(routes, path)) return { route: routes[path], params: {} };
  const segments = path.split('/');
  for (const [pattern, route] of Object.entries(routes)) {
    if (!pattern.includes('/:')) continue;
    const parts = pattern.split('/');
    if (parts.length !== segments.length) continue;
    const params = {};
    const ok = parts.every((part, i) => {
      if (!part.startsWith(':')) return part === segments[i];
      if (!segments[i]) return false;
      try { params[part.slice(1)] = decodeURIComponent(segments[i]); return true; } catch { return false; }
    });
    if (ok) return { route, params };
  }
  return { route: notFoundRoute, params: {} };
}

/** Go to a hash path such as '/' or '/courses/42'. Re-renders if already there. */
export function navigate(path, { replace = false } = {}) {
  const target = `#${path}`;
  if (location.hash === target) {
    renderRoute({ moveFocus: true });
  } else if (replace) {
    history.replaceState(null, '', target);
    renderRoute({ moveFocus: true });
  } else {
    location.hash = target; // → hashchange → renderRoute
  }
}

let renderSeq = 0;
let pageController = null;

function setDocTitle(text) {
  document.title = text && text !== BRAND ? `${text} · ${BRAND}` : BRAND;
}

/** Snapshot form values by id, so a language switch does not wipe what was typed. */
function snapshotInputs() {
  const values = new Map();
  for (const el of main.querySelectorAll('input[id], textarea[id], select[id]')) {
    if (el.type === 'file') continue;
    values.set(el.id, el.type === 'checkbox' || el.type === 'radio' ? el.checked : el.value);
  }
  return values;
}

function restoreInputs(values) {
  for (const [id, value] of values) {
    const el = document.getElementById(id);
    if (!el || !main.contains(el)) continue;
    if (typeof value === 'boolean') el.checked = value;
    else el.value = value;
  }
}

async function renderRoute({ moveFocus = false, keepInputs = false } = {}) {
  const seq = ++renderSeq;
  pageController?.abort();
  const controller = new AbortController();
  pageController = controller;

  const saved = keepInputs ? snapshotInputs() : null;
  const { path, query } = parseHash();
  const { route, params } = matchRoute(path);
  updateNav(path);
  main.removeAttribute('data-page');
  main.setAttribute('aria-busy', 'true');

  const view = h('div', { class: `page page-${route.name}` });
  let title = null;
  const ctx = {
    api, t, session, navigate, params, query, announce,
    signal: controller.signal,
    lang: getLang(),
    setTitle(text) { title = text; setDocTitle(text); },
  };

  let pageName = route.name;
  try {
    const mod = await route.load();
    if (seq !== renderSeq) return;
    main.replaceChildren(view);
    await mod.render(view, ctx);
  } catch (err) {
    if (seq !== renderSeq) return;
    console.error(err);
    pageName = 'error';
    view.replaceChildren(...errorView(err));
    main.replaceChildren(view);
  }
  if (seq !== renderSeq) return;

  if (saved) restoreInputs(saved);
  const h1 = view.querySelector('h1');
  if (title === null) setDocTitle(h1 ? h1.textContent : '');
  main.setAttribute('aria-busy', 'false');
  main.setAttribute('data-page', pageName);
  if (moveFocus) {
    // Move focus to the new page's heading so screen readers announce it.
    const target = h1 || main;
    if (target !== main && !target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
    target.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

function errorView(err) {
  return [
    h('h1', {}, t('error.title')),
    h('p', {}, t('error.pageLoad')),
    h('p', {}, problemText(err, t)),
    h('p', {}, h('a', { href: '#/' }, t('error.home'))),
  ];
}

async function renderNotFound(container, ctx) {
  container.append(
    h('section', { class: 'card narrow' },
      h('h1', {}, ctx.t('notFound.title')),
      h('p', {}, ctx.t('notFound.body')),
      h('p', {}, h('a', { href: '#/' }, ctx.t('error.home')))));
}

// ---------- header ----------

function updateNav(path) {
  const list = document.getElementById('nav-list');
  const items = Object.entries(routes)
    .filter(([, route]) => route.nav && (!route.signedIn || session.signedIn)
      && (!route.admin || Boolean(session.user?.is_admin)))
    .map(([routePath, route]) => h('li', {},
      h('a', { href: `#${routePath}`, 'aria-current': routePath === path ? 'page' : null }, t(route.nav))));
  list.replaceChildren(...items);
}

function renderUserArea() {
  const area = document.getElementById('user-area');
  const user = session.user;
  if (user) {
    area.replaceChildren(
      h('span', { class: 'user' },
        h('span', { class: 'visually-hidden' }, `${t('header.signedInAs')} `),
        h('span', { id: 'current-user', class: 'user-name' }, String(user.display_name ?? ''))),
      h('button', { type: 'button', id: 'signout', class: 'button button-quiet', onclick: onSignOut },
        t('header.signOut')));
  } else {
    area.replaceChildren(
      h('a', { id: 'signin-link', class: 'button button-primary', href: '#/signin' }, t('header.signIn')),
      h('a', { id: 'register-link', class: 'button button-quiet', href: '#/register' }, t('header.register')));
  }
}

async function onSignOut(event) {
  const button = event.currentTarget;
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await session.signOut(); // re-renders the user area via subscribe
    announce(t('status.signedOut'));
    document.getElementById('signin-link')?.focus();
    renderRoute();
  } catch (err) {
    button.setAttribute('aria-disabled', 'false');
    announce(problemText(err, t));
  }
}

function applyStaticStrings() {
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  const lang = getLang();
  document.getElementById('lang-zh').setAttribute('aria-pressed', String(lang === 'zh'));
  document.getElementById('lang-en').setAttribute('aria-pressed', String(lang === 'en'));
}

// ---------- preferences ----------

function readLargeText() {
  try { return localStorage.getItem(LARGE_TEXT_KEY) === '1'; } catch { return false; }
}

function applyLargeText(on) {
  document.documentElement.classList.toggle('large-text', on);
  document.getElementById('large-text').setAttribute('aria-pressed', String(on));
  try { localStorage.setItem(LARGE_TEXT_KEY, on ? '1' : '0'); } catch { /* storage unavailable */ }
}

// ---------- start ----------

let headerReady = false; // the user area waits for the first /me answer

async function start() {
  applyLargeText(readLargeText());
  applyStaticStrings();

  document.getElementById('skip-link').addEventListener('click', (event) => {
    event.preventDefault(); // keep the hash route; just move focus
    main.focus();
  });
  document.getElementById('lang-zh').addEventListener('click', () => setLang('zh'));
  document.getElementById('lang-en').addEventListener('click', () => setLang('en'));
  document.getElementById('large-text').addEventListener('click', () => {
    applyLargeText(!document.documentElement.classList.contains('large-text'));
  });

  onLangChange(() => {
    applyStaticStrings();
    if (headerReady) renderUserArea();
    renderRoute({ keepInputs: true });
  });

  try {
    await session.refresh();
  } catch (err) {
    console.warn('could not load the session', err);
  }
  session.subscribe(renderUserArea);
  session.subscribe(() => updateNav(parseHash().path));
  headerReady = true;
  renderUserArea();

  window.addEventListener('hashchange', () => renderRoute({ moveFocus: true }));
  await renderRoute();
}

start();
