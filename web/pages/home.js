// Home: what Shuyuan is; greets the signed-in user by display name; a search
// box that opens #/search?q=….

import { h } from '../dom.js';

const FEATURES = [
  { glyph: '课', key: 'courseware' },
  { glyph: '圈', key: 'circles' },
  { glyph: '域', key: 'regions' },
];

export async function render(container, { t, session, navigate }) {
  const user = session.user;

  const searchInput = h('input', {
    id: 'home-search-q', name: 'q', type: 'search', class: 'search-input',
    autocomplete: 'off', spellcheck: 'false', enterkeyhint: 'search',
    placeholder: t('search.placeholder'), 'aria-describedby': 'home-search-hint',
  });
  const searchForm = h('form', { id: 'home-search', class: 'search-form home-search', role: 'search', 'aria-label': t('search.title') },
    h('label', { for: 'home-search-q', class: 'search-label' }, t('home.search.label')),
    h('p', { id: 'home-search-hint', class: 'field-hint' }, t('search.hint')),
    h('div', { class: 'search-row' },
      searchInput,
      h('button', { type: 'submit', id: 'home-search-submit', class: 'button button-primary search-button' }, t('search.submit'))));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = searchInput.value.trim();
    navigate(q ? `/search?${new URLSearchParams({ q })}` : '/search');
  });

  const hero = h('section', { class: 'hero', 'aria-labelledby': 'home-title' },
    h('h1', { id: 'home-title' }, t('home.title')),
    user ? h('p', { id: 'home-greeting', class: 'greeting' }, t('home.greeting', { name: user.display_name })) : null,
    h('p', { class: 'lead' }, t('home.lead')),
    searchForm,
    user ? null : h('div', { class: 'cta' },
      h('p', {}, t('home.cta.text')),
      h('p', { class: 'cta-actions' },
        h('a', { class: 'button button-primary', href: '#/register' }, t('home.cta.register')),
        h('a', { class: 'button button-quiet', href: '#/signin' }, t('home.cta.signin')))));

  const features = h('section', { class: 'features', 'aria-labelledby': 'home-features' },
    h('h2', { id: 'home-features', class: 'visually-hidden' }, t('home.features')),
    h('ul', { class: 'feature-list' },
      FEATURES.map(({ glyph, key }) => h('li', { class: 'card feature' },
        h('span', { class: 'feature-glyph', 'aria-hidden': 'true', lang: 'zh-CN' }, glyph),
        h('h3', {}, t(`home.${key}.title`)),
        h('p', {}, t(`home.${key}.body`))))));

  container.append(hero, features);
}
