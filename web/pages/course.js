// One course: player with subtitles, description, details and files.
// Address: #/courses/<id>?file=<file id>&t=<seconds>&page=<n>
//   file — which video/audio plays (or which document a page link is for)
//   t    — seek the player there once its metadata is loaded
//   page — with a document file: open it at url#page=<n>

import { h, problemText } from '../dom.js';
import { ApiError } from '../api.js';
import {
  label, languageName, formatSize, formatRegion, chips, courseHref, loadMemberships, canPublishFor,
} from '../courseware.js';

const MEDIA = new Set(['video', 'audio']);
// lesson1.zh.vtt, lesson1.zh-CN.srt, lesson1_en.srt → the language hint before the extension
const SUBTITLE_HINT = /[._-]([a-z]{2,3}(?:-[a-z0-9]{2,8})*)\.(?:srt|vtt)$/i;

/** Only same-origin paths are used as media addresses; anything else falls back to /media/<id>. */
function fileUrl(file) {
  const url = typeof file.url === 'string' ? file.url : '';
  return /^\/(?!\/)/.test(url) ? url : `/media/${encodeURIComponent(file.id)}`;
}

function trackUrl(file) {
  const url = typeof file.track_url === 'string' ? file.track_url : '';
  return /^\/(?!\/)/.test(url) ? url : `${fileUrl(file)}?format=vtt`;
}

function subtitleLang(file, languages) {
  const m = SUBTITLE_HINT.exec(String(file.name ?? '').replace(/_/g, '-'));
  if (m) {
    const base = m[1].split('-')[0].toLowerCase();
    if (base.length === 2 || languages.some((l) => String(l).toLowerCase().split('-')[0] === base)) return m[1];
  }
  return languages[0] || 'und';
}

/** '90', '90.5', '1:30' or '1:02:03' → seconds, or NaN. */
function parseTime(text) {
  if (!text || !/^\d+(?:\.\d+)?$|^\d+(?::\d{1,2}){1,2}(?:\.\d+)?$/.test(text)) return NaN;
  return text.split(':').reduce((total, part) => total * 60 + Number(part), 0);
}

export async function render(container, ctx) {
  const { api, t, session, params, query, signal, navigate, announce, lang } = ctx;
  const path = `/api/v1/courses/${encodeURIComponent(params.id)}`;
  let course;
  let memberships;
  try {
    [course, memberships] = await Promise.all([
      api('GET', path, null, { signal }),
      loadMemberships(api, session, signal),
    ]);
  } catch (err) {
    if (!(err instanceof ApiError) || ![400, 404, 410, 422].includes(err.status)) throw err;
    container.append(h('section', { class: 'card narrow' },
      h('h1', { id: 'course-title' }, t('course.notFound')),
      h('p', {}, t('course.notFoundBody')),
      h('p', {}, h('a', { href: '#/courses' }, t('course.backToList')))));
    return;
  }

  const title = String(course.title ?? '');
  const files = Array.isArray(course.files) ? course.files : [];
  const languages = (Array.isArray(course.languages) ? course.languages : []).map(String);
  const videos = files.filter((f) => f.kind === 'video');
  const media = files.filter((f) => MEDIA.has(f.kind));
  const subtitles = files.filter((f) => f.kind === 'subtitle');
  const selected = files.find((f) => String(f.id) === query.get('file')) || null;
  const page = Number.parseInt(query.get('page') || '', 10);

  // ---------- player ----------
  let current = selected && MEDIA.has(selected.kind) ? selected : (videos[0] || media[0] || null);
  let player = null;
  const nowPlaying = h('p', { id: 'player-now', class: 'player-now' });
  const playButtons = new Map(); // file id → its play button

  function markCurrent() {
    nowPlaying.textContent = current ? t('course.nowPlaying', { name: current.name }) : '';
    for (const [id, button] of playButtons) button.setAttribute('aria-pressed', String(id === current?.id));
  }

  function play(file) {
    if (file !== current) {
      current = file;
      player.src = fileUrl(file); // starts the media load algorithm afresh
      markCurrent();
      announce(t('course.nowPlaying', { name: file.name }));
      // Keep the choice in the address (no re-render), so it can be shared.
      history.replaceState(null, '', `${courseHref(course.id)}?file=${encodeURIComponent(file.id)}`);
    }
    player.play().catch(() => { /* the user can press play */ });
    player.scrollIntoView({ block: 'nearest' });
  }

  let playerSection = null;
  if (current) {
    const tracks = videos.length ? subtitles.map((f, i) => h('track', {
      kind: 'subtitles', src: trackUrl(f), srclang: subtitleLang(f, languages), label: String(f.name ?? ''), default: i === 0,
    })) : [];
    player = h(videos.length ? 'video' : 'audio', {
      id: 'player', class: 'player', controls: true, preload: 'metadata', src: fileUrl(current),
      'aria-label': t('course.player'),
    }, tracks, h('p', {}, t('course.noPlayer')));
    const start = parseTime(query.get('t'));
    if (start > 0) {
      const seek = () => { try { player.currentTime = start; } catch { /* not seekable */ } };
      if (player.readyState >= 1) seek(); else player.addEventListener('loadedmetadata', seek, { once: true });
    }
    playerSection = h('section', { class: 'player-section', 'aria-label': t('course.player') }, player, nowPlaying);
  }

  // ---------- a document page link (?file=<document>&page=N) ----------
  let documentNote = null;
  const pageHref = (f) => (selected === f && page >= 1 ? `${fileUrl(f)}#page=${page}` : fileUrl(f));
  if (selected && !MEDIA.has(selected.kind)) {
    documentNote = h('p', { id: 'document-open', class: 'note' },
      h('a', { id: 'document-link', href: pageHref(selected) },
        page >= 1 ? t('course.openAtPage', { name: selected.name, page }) : t('course.openFile', { name: selected.name })));
  }

  // ---------- details ----------
  const row = (key, value) => (value === null || value === '' || value === undefined ? null
    : h('div', { class: 'meta-row' }, h('dt', {}, t(key)), h('dd', {}, value)));
  const list = (values) => chips(values) || null;
  const details = h('dl', { id: 'course-meta', class: 'course-meta' },
    row('course.institution', course.institution?.name ? String(course.institution.name) : ''),
    row('course.region', formatRegion(course.region)),
    row('course.subjects', list((course.subjects || []).map((s) => label(t, 'subject', s)))),
    row('course.audience', list((course.audience || []).map((a) => label(t, 'audience', a)))),
    row('course.level', course.level ? label(t, 'level', course.level) : ''),
    row('course.languages', languages.map((l) => languageName(l, lang)).join(t('list.separator'))),
    row('course.license', course.license ? String(course.license) : ''),
    row('course.credits', course.credits === null || course.credits === undefined ? '' : String(course.credits)),
    row('course.tags', list((course.tags || []).map(String))));

  // ---------- files ----------
  const fileItems = files.map((f) => {
    let button = null;
    if (player && MEDIA.has(f.kind)) {
      button = h('button', {
        type: 'button', class: 'button button-quiet file-play', 'aria-pressed': 'false',
        'aria-label': t('course.playFile', { name: f.name }), onclick: () => play(f),
      }, t('course.play'));
      playButtons.set(f.id, button);
    }
    return h('li', { class: `file-item${selected === f ? ' is-selected' : ''}`, 'aria-current': selected === f ? 'true' : null },
      h('a', { class: 'file-name', href: pageHref(f) }, String(f.name ?? '')),
      h('span', { class: 'file-kind' }, label(t, 'kind', f.kind)),
      h('span', { class: 'file-size' }, formatSize(f.size, lang)),
      button);
  });
  const fileList = fileItems.length
    ? h('ul', { id: 'file-list', class: 'file-list' }, fileItems)
    : h('p', { id: 'file-list', class: 'muted' }, t('course.noFiles'));
  markCurrent();

  // ---------- staff actions ----------
  let actions = null;
  if (canPublishFor(session, memberships, course.institution?.slug)) {
    const errorRegion = h('div', { id: 'course-action-error', class: 'form-error', role: 'alert' });
    const withdraw = h('button', { type: 'button', id: 'course-withdraw', class: 'button button-danger' },
      t('course.withdraw'));
    withdraw.addEventListener('click', async () => {
      if (withdraw.getAttribute('aria-disabled') === 'true') return;
      if (!window.confirm(t('course.withdrawConfirm', { title }))) return;
      withdraw.setAttribute('aria-disabled', 'true');
      errorRegion.replaceChildren();
      try {
        await api('DELETE', path);
        announce(t('course.withdrawn', { title }));
        navigate('/courses');
      } catch (err) {
        withdraw.setAttribute('aria-disabled', 'false');
        errorRegion.replaceChildren(h('p', { class: 'form-error-summary' }, t('course.withdrawFailed')),
          h('p', {}, problemText(err, t)));
      }
    });
    actions = h('div', { class: 'course-actions' },
      h('a', { id: 'course-upload-link', class: 'button button-quiet', href: `#/upload?course=${encodeURIComponent(course.id)}` },
        t('course.uploadFiles')),
      withdraw, errorRegion);
  }

  const byline = [course.institution?.name, formatRegion(course.region)].filter(Boolean).join(' · ');
  const description = String(course.description ?? '').trim();
  container.append(h('article', { class: 'course', 'aria-labelledby': 'course-title' },
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/courses' }, t('course.backToList'))),
    h('h1', { id: 'course-title' }, title),
    byline ? h('p', { class: 'course-byline' }, byline) : null,
    actions,
    playerSection,
    documentNote,
    h('div', { class: 'course-body' },
      h('section', { class: 'course-about', 'aria-labelledby': 'course-about-heading' },
        h('h2', { id: 'course-about-heading' }, t('course.about')),
        description ? h('div', { id: 'course-description', class: 'course-description' }, description)
          : h('p', { class: 'muted' }, t('course.noDescription'))),
      h('section', { class: 'course-details', 'aria-labelledby': 'course-details-heading' },
        h('h2', { id: 'course-details-heading' }, t('course.details')),
        details)),
    h('section', { class: 'course-files', 'aria-labelledby': 'course-files-heading' },
      h('h2', { id: 'course-files-heading' }, t('course.files')),
      fileList)));
}
