// Registration form. After 201 we sign in with the same credentials and go home.

import { h, formField, showProblem, clearProblem, setPending } from '../dom.js';

export async function render(container, { t, session, navigate }) {
  const email = formField({ id: 'register-email', label: t('register.email'), type: 'email', autocomplete: 'email' });
  const name = formField({
    id: 'register-name', label: t('register.name'), autocomplete: 'nickname', hint: t('register.nameHint'),
  });
  const password = formField({
    id: 'register-password', label: t('register.password'), type: 'password', autocomplete: 'new-password',
    hint: t('register.passwordHint'),
  });
  // Server field names → form fields, for 422 `errors: [{field, message}]`.
  const fields = { email, display_name: name, password };
  const errorRegion = h('div', { id: 'register-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'register-submit', class: 'button button-primary' },
    t('register.submit'));
  const form = h('form', { id: 'register-form', class: 'form', 'aria-labelledby': 'register-title' },
    email.wrapper, name.wrapper, password.wrapper, errorRegion, h('div', { class: 'form-actions' }, submit));

  let pending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (pending) return;
    pending = true;
    setPending(submit, true, t('register.pending'));
    clearProblem(errorRegion, fields);
    const emailValue = email.input.value.trim();
    const passwordValue = password.input.value;
    try {
      try {
        await session.register(emailValue, passwordValue, name.input.value.trim());
      } catch (err) {
        showProblem(errorRegion, err, { t, fields, summary: t('register.failed') });
        return;
      }
      try {
        await session.signIn(emailValue, passwordValue);
      } catch (err) {
        showProblem(errorRegion, err, { t, summary: t('register.signinFailed') });
        errorRegion.append(h('p', {}, h('a', { href: '#/signin' }, t('register.signinLink'))));
        return;
      }
      navigate('/');
    } finally {
      pending = false;
      setPending(submit, false, t('register.submit'));
    }
  });

  container.append(h('section', { class: 'card narrow' },
    h('h1', { id: 'register-title' }, t('register.title')),
    form,
    h('p', { class: 'form-alt' }, `${t('register.haveAccount')} `, h('a', { href: '#/signin' }, t('register.signinLink')))));
}
