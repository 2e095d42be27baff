// Shared by the courseware pages (courses, course, upload): the course
// vocabularies, their localized labels, and small formatting helpers.
// Labels live in i18n.js under subject.*, audience.*, level.*, kind.*.

import { h } from './dom.js';

export const SUBJECTS = [
  'civic_literacy', 'integrity', 'humanities_arts', 'science_technology', 'vocational_skills',
  'early_childhood', 'fitness', 'health', 'life_leisure', 'digital_skills', 'community_service',
];
export const AUDIENCES = ['children', 'youth', 'adults', 'seniors', 'families'];
export const LEVELS = ['beginner', 'intermediate', 'advanced'];
const KINDS = ['video', 'audio', 'document', 'subtitle', 'image', 'other'];

/** A localized label for a vocabulary value; unknown values (e.g. from a newer peer) show as is. */
export function label(t, group, value) {
  const known = { subject: SUBJECTS, audience: AUDIENCES, level: LEVELS, kind: KINDS }[group];
  return known && known.includes(value) ? t(`${group}.${value}`) : String(value ?? '');
}

/** 'zh' → '中文' / 'Chinese' in the UI language, falling back to the code. */
export function languageName(code, uiLang) {
  try {
    return new Intl.DisplayNames([uiLang === 'zh' ? 'zh-CN' : 'en'], { type: 'language' }).of(code) || code;
  } catch {
    return String(code);
  }
}

/** 1536 → '1.5 KB'. */
export function formatSize(bytes, uiLang) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  const fmt = new Intl.NumberFormat(uiLang === 'zh' ? 'zh-CN' : 'en', { maximumFractionDigits: unit === 0 ? 0 : 1 });
  return `${fmt.format(value)} ${units[unit]}`;
}

/** 'zhejiang/hangzhou/xihu' → 'zhejiang / hangzhou / xihu'. */
export function formatRegion(region) {
  return String(region ?? '').split('/').filter(Boolean).join(' / ');
}

/** Split 'zh, en，粤' (ASCII or Chinese commas) into trimmed, non-empty, unique items. */
export function splitList(text) {
  return [...new Set(String(text ?? '').split(/[,，、;；\n]+/).map((s) => s.trim()).filter(Boolean))];
}

/** `#/courses/<id>` for a course id. */
export function courseHref(id) {
  return `#/courses/${encodeURIComponent(id)}`;
}

/** A list of small labelled chips, e.g. the subjects of a course. */
export function chips(values, className = 'chips') {
  const items = (Array.isArray(values) ? values : []).filter((v) => v !== null && v !== '');
  return items.length ? h('ul', { class: className }, items.map((v) => h('li', {}, v))) : null;
}

/**
 * The signed-in user's memberships, [] when signed out or on any failure:
 * pages only use them to decide what to offer; the server enforces the rules.
 */
export async function loadMemberships(api, session, signal) {
  if (!session.user) return [];
  try {
    const res = await api('GET', '/api/v1/me/memberships', null, { signal });
    return Array.isArray(res?.memberships) ? res.memberships : [];
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    // The session ended elsewhere: let the header (and nav) catch up.
    if (err?.status === 401) session.refresh().catch(() => {});
    return [];
  }
}

/** May the user publish for (and so edit courses of) this institution slug? */
export function canPublishFor(session, memberships, slug) {
  if (!session.user) return false;
  if (session.user.is_admin) return true;
  return memberships.some((m) => m?.institution?.slug === slug && (m.role === 'staff' || m.role === 'manager'));
}
