// Sign-in form. On success the session cookie is set by the server and we go home.

import { h, formField, showProblem, clearProblem, setPending } from '../dom.js';

export async function render(container, { t, session, navigate }) {
  const email = formField({ id: 'signin-email', label: t('signin.email'), type: 'email', autocomplete: 'username' });
  const password = formField({
    id: 'signin-password', label: t('signin.password'), type: 'password', autocomplete: 'current-password',
  });
  const fields = { email, password };
  const errorRegion = h('div', { id: 'signin-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'signin-submit', class: 'button button-primary' }, t('signin.submit'));
  const form = h('form', { id: 'signin-form', class: 'form', 'aria-labelledby': 'signin-title' },
    email.wrapper, password.wrapper, errorRegion, h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('signin.pending'));
    clearProblem(errorRegion, fields);
    try {
      await session.signIn(email.input.value.trim(), password.input.value);
      navigate('/');
    } catch (err) {
      showProblem(errorRegion, err, {
        t, fields, summary: t('signin.failed'), statusMessages: { 401: t('signin.invalid') },
      });
    } finally {
      pending = false;
      setPending(submit, false, t('signin.submit'));
    }
  });

  container.append(h('section', { class: 'card narrow' },
    h('h1', { id: 'signin-title' }, t('signin.title')),
    session.user ? h('p', { class: 'note' }, t('signin.already', { name: session.user.display_name })) : null,
    form,
    h('p', { class: 'form-alt' }, `${t('signin.noAccount')} `, h('a', { href: '#/register' }, t('signin.registerLink')))));
}
