// /class/{id}/sheet?lang=en|es#CODE: the invitation sheet that goes home with a student, one
// printed page (A4 or Letter) in the family's language, chosen when printing: the school, the
// class and child, a two-line explanation, the QR code of the join link and the short code.
// The code comes after `#`, so it never reaches the server's logs.

import { api } from '../api.js';
import { h, mount, showError } from '../dom.js';
import { LANGUAGES, setLanguage } from '../i18n.js';
import { requireMe } from './account.js';

export async function sheet(classId) {
  await requireMe();
  const code = decodeURIComponent(location.hash.slice(1)).trim();
  const lang = new URLSearchParams(location.search).get('lang');
  // The family's language, for this page only: the teacher's own choice stays saved.
  if (LANGUAGES.includes(lang)) await setLanguage(lang);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  let preview;
  let svg;
  let school;
  try {
    [preview, school] = await Promise.all([
      api('POST', '/api/v1/invites/lookup', { code }),
      api('GET', '/api/v1/school'),
    ]);
    const response = await fetch('/api/v1/invites/qr', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }),
    });
    if (!response.ok) throw new Error(`QR ${response.status}`);
    svg = await response.blob();
  } catch (e) {
    showError(error, e);
    mount('sheet_title', h('p', {}, h('a', { href: `/class/${classId}/manage#students`, text: 'back_to_manage' })), error);
    return;
  }
  const joinBase = `${location.origin}/join`;
  const qr = h('img', { class: 'sheet-qr', src: URL.createObjectURL(svg), label: 'qr_code' });
  const page = h('article', { class: 'sheet', dataset: { lang: lang || 'en' } },
    school.name ? h('p', { class: 'sheet-school' }, school.name) : null,
    h('h1', { class: 'sheet-heading', text: 'sheet_heading', vars: { class_name: preview.class_name } }),
    preview.student_name ? h('p', { class: 'sheet-for', text: 'sheet_for_family', vars: { student: preview.student_name } }) : null,
    h('p', { class: 'sheet-line', text: 'sheet_line_1' }),
    h('p', { class: 'sheet-line', text: 'sheet_line_2', vars: { url: joinBase } }),
    qr,
    h('p', { class: 'sheet-code' }, h('span', { text: 'invite_code' }), h('strong', { class: 'code' }, code)),
    h('p', { class: 'sheet-url' }, joinBase));
  const tools = h('div', { class: 'sheet-tools' },
    h('a', { class: 'button', href: `/class/${classId}/manage#students`, text: 'back_to_manage' }),
    h('button', { type: 'button', class: 'primary', text: 'print', on: { click: () => window.print() } }),
    h('p', { class: 'hint', text: 'sheet_print_hint' }));
  mount('sheet_title', tools, page);
  document.body.classList.add('sheet-page');
  await qr.decode().catch(() => {});
}
