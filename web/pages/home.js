// Home: what Shuyuan is; greets the signed-in user by display name.

import { h } from '../dom.js';

const FEATURES = [
  { glyph: '课', key: 'courseware' },
  { glyph: '圈', key: 'circles' },
  { glyph: '域', key: 'regions' },
];

export async function render(container, { t, session }) {
  const user = session.user;

  const hero = h('section', { class: 'hero', 'aria-labelledby': 'home-title' },
    h('h1', { id: 'home-title' }, t('home.title')),
    user ? h('p', { id: 'home-greeting', class: 'greeting' }, t('home.greeting', { name: user.display_name })) : null,
    h('p', { class: 'lead' }, t('home.lead')),
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
