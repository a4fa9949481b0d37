// The class timeline on the class page: a composer (teachers post, students hand in drafts),
// the approval queue for teachers, class updates and session logs newest first with comments,
// and a private feed link. Also the page of one session's log.

import { api } from '../api.js';
import { field, h, mount, showError } from '../dom.js';
import { requireMe } from './account.js';

const allowed = (klass, action) => ['allowed', 'draft_only', 'own_only'].includes(klass.permissions?.[action]);
/** A date and time in the reader's locale, without seconds; follows a language switch. */
const when = (ms) => h('time', { dateTime: new Date(ms).toISOString(), text: 'date_value', vars: { when: { date_ms: ms } } });

/** Sanitized HTML from the server (see src/markdown.rs) into a fresh element. */
function rendered(html) {
  const div = h('div', { class: 'post-body' });
  div.innerHTML = html;
  return div;
}

function attachmentView(a) {
  const url = `/api/v1/attachments/${a.id}`;
  if (a.content_type.startsWith('image/')) {
    // Phones load the small version; a tap opens the full image.
    const src = a.has_thumbnail ? `${url}/thumbnail` : url;
    return h('a', { href: url }, h('img', { src, alt: a.file_name, class: 'attachment', loading: 'lazy' }));
  }
  if (a.content_type.startsWith('video/')) return h('video', { src: url, controls: true, class: 'attachment' });
  if (a.content_type.startsWith('audio/')) return h('audio', { src: url, controls: true });
  return h('a', { href: url }, a.file_name);
}

/** Every comment of a post, following the list's pages (`Link: rel="next"`). */
async function allComments(postId) {
  const comments = [];
  let next = `/api/v1/posts/${postId}/comments?limit=50`;
  while (next) {
    const response = await fetch(next, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    if (!response.ok) throw new Error(`comments: ${response.status}`);
    comments.push(...await response.json());
    next = /<([^>]*)>;\s*rel="next"/.exec(response.headers.get('link') || '')?.[1] || null;
  }
  return comments;
}

/** The first comments of a post; a post with more offers to show them all. */
function commentList(post) {
  const block = h('div', { class: 'comment-block' }, h('ul', { class: 'comments' }, post.comments.map((c) =>
    h('li', {}, h('strong', {}, c.author_name || ''), ' ', c.body))));
  if (post.comment_count > post.comments.length) {
    block.append(h('button', {
      type: 'button', class: 'all-comments', text: 'comments_all',
      on: { click: async () => {
        const comments = await allComments(post.id);
        block.replaceWith(commentList({ ...post, comments, comment_count: comments.length }));
      } },
    }));
  }
  return block;
}

/** Teachers: "Seen by N families" opens the list of those families. */
function seenBy(post) {
  const list = h('ul', { class: 'seen-by', hidden: true });
  const button = h('button', { type: 'button', class: 'badge seen-by-toggle', text: 'post_seen_by', vars: { count: post.family_views }, 'aria-expanded': 'false' });
  button.addEventListener('click', async () => {
    if (list.hidden) {
      const viewers = await api('GET', `/api/v1/posts/${post.id}/seen`);
      list.replaceChildren(...(viewers.length ? viewers.map((v) => h('li', {}, v.display_name)) : [h('li', { class: 'hint', text: 'seen_by_none' })]));
    }
    list.hidden = !list.hidden;
    button.setAttribute('aria-expanded', String(!list.hidden));
  });
  return [button, list];
}

function postCard(klass, post, onChange) {
  const comments = commentList(post);
  const [seenButton, seenList] = post.family_views !== undefined ? seenBy(post) : [null, null];
  const card = h('article', { class: 'card post', dataset: { postId: String(post.id) } },
    h('p', { class: 'meta' }, h('strong', {}, post.author_name || ''), ' · ', when(post.published_at || post.updated_at), seenButton),
    seenList,
    rendered(post.html),
    post.attachments.length ? h('div', { class: 'attachments' }, post.attachments.map(attachmentView)) : null,
    post.targets.length ? h('p', { class: 'targets' }, post.targets.map((t) => h('span', { class: 'badge target' }, t))) : null,
    post.students.length ? h('p', { class: 'hint', text: 'post_about', vars: { names: post.students.map((s) => s.name).join(', ') } }) : null,
    comments);
  if (allowed(klass, 'comment') && post.state === 'published') {
    const input = h('input', { name: 'comment', required: true, maxLength: 2000, label: 'comment_write', placeholder: 'comment_write' });
    card.append(h('form', {
      class: 'comment-form inline',
      on: { submit: async (e) => { e.preventDefault(); await api('POST', `/api/v1/posts/${post.id}/comments`, { body: input.value }); input.value = ''; await onChange(post.id); } },
    }, input, h('button', { type: 'submit', text: 'comment_send' })));
  }
  return card;
}

/** "12 min · 3 attending": the duration in seconds under a minute, the count in the plural it needs. */
function summary(durationMs, count) {
  return h('span', { text: 'session_line', vars: { duration: { duration_ms: durationMs }, count } });
}

function sessionCard(item) {
  const s = item.session;
  return h('article', { class: 'card session-item' },
    h('p', { class: 'meta' }, when(s.started_at)),
    h('p', {}, h('strong', { text: 'session_item', vars: { room: s.room_name } })),
    h('p', { class: 'hint' }, summary(s.duration_ms, s.attendees)),
    h('a', { href: `/session/${s.id}`, class: 'button', text: 'session_open' }),
    recordingLink(s));
}

/** The session's recording: a link to replay it, or when it was deleted. */
function recordingLink(s) {
  if (s.recording_id) return h('a', { href: `/recording/${s.recording_id}`, class: 'button primary recording-link', text: 'recording_watch' });
  if (s.recording_deleted_at) return h('p', { class: 'hint recording-deleted', text: 'recording_deleted', vars: { date: { date_ms: s.recording_deleted_at } } });
  return null;
}

function composer(klass, onDone) {
  const student = klass.permissions?.publish_post === 'draft_only';
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const body = h('textarea', { name: 'body', required: true, rows: 4, maxLength: 20000 });
  const targets = h('input', { name: 'targets', placeholder: 'post_targets_hint' });
  const files = h('input', { type: 'file', name: 'files', multiple: true, accept: 'image/*,video/*,audio/*,application/pdf' });
  const visibility = h('select', { name: 'visibility' },
    h('option', { value: 'class', text: 'visibility_class' }), h('option', { value: 'students', text: 'visibility_students' }));
  const students = h('fieldset', { class: 'students-pick' });
  api('GET', `/api/v1/classes/${klass.id}/students`).then((list) => students.replaceChildren(
    h('legend', { text: 'post_students' }),
    ...list.map((s) => h('label', {}, h('input', { type: 'checkbox', value: String(s.id) }), ' ', s.name)))).catch(() => {});
  return h('form', {
    class: 'card form composer',
    on: {
      submit: async (event) => {
        event.preventDefault();
        error.hidden = true;
        try {
          const attachment_ids = [];
          for (const file of files.files) {
            const form = new FormData();
            form.append('file', file);
            const made = await api('UPLOAD', `/api/v1/classes/${klass.id}/attachments`, form);
            attachment_ids.push(made.id);
          }
          const student_ids = [...students.querySelectorAll('input:checked')].map((i) => Number(i.value));
          const post = await api('POST', `/api/v1/classes/${klass.id}/posts`, {
            body: body.value, visibility: visibility.value, student_ids, attachment_ids,
            targets: targets.value.split(',').map((t) => t.trim()).filter(Boolean),
          });
          if (student) await api('POST', `/api/v1/posts/${post.id}/submit`, {});
          body.value = '';
          targets.value = '';
          files.value = '';
          await onDone(student ? 'post_handed_in' : 'post_published');
        } catch (e) {
          showError(error, e);
        }
      },
    },
  },
  field('post_body', body), field('post_visibility', visibility), students, field('post_targets', targets),
  field('post_files', files), h('button', { type: 'submit', class: 'primary', text: student ? 'post_hand_in' : 'post_publish' }), error);
}

async function approvalQueue(klass, onChange) {
  const pending = await api('GET', `/api/v1/classes/${klass.id}/posts?state=pending`);
  if (!pending.length) return h('p', { class: 'hint', text: 'no_pending' });
  return h('ul', { class: 'queue' }, pending.map((post) => {
    const note = h('input', { name: 'note', label: 'return_note', placeholder: 'return_note' });
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    let body = rendered(post.html);
    // Approval names the revision shown here: if the post changed since, nothing is
    // published, and the new text is shown for the teacher to read first.
    let revision = post.revision;
    async function approve() {
      try {
        await api('POST', `/api/v1/posts/${post.id}/approve`, { revision });
        await onChange();
      } catch (e) {
        showError(error, e);
        if (e.code === 'post_changed') {
          const fresh = await api('GET', `/api/v1/posts/${post.id}`);
          const shown = rendered(fresh.html);
          body.replaceWith(shown);
          body = shown;
          revision = fresh.revision;
        }
      }
    }
    return h('li', { class: 'card' }, h('p', { class: 'meta' }, h('strong', {}, post.author_name || '')), body,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary approve', text: 'approve', on: { click: approve } }),
        note,
        h('button', { type: 'button', text: 'return_post', on: { click: async () => { if (note.value.trim()) { await api('POST', `/api/v1/posts/${post.id}/return`, { note: note.value }); await onChange(); } } } })),
      error);
  }));
}

/** The timeline section of the class page. */
export function timelineSection(klass) {
  const list = h('div', { class: 'timeline-items' });
  const more = h('button', { type: 'button', class: 'older', text: 'older', hidden: true });
  const queue = h('div', { class: 'approval-queue' });
  const notice = h('p', { class: 'ok', role: 'status', hidden: true });
  const feed = h('div', { class: 'feed' });
  let cursor = null;

  async function load(reset) {
    if (reset) {
      cursor = null;
      list.replaceChildren();
    }
    const page = await api('GET', `/api/v1/classes/${klass.id}/timeline?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
    // A post the event stream showed meanwhile gives way to the page's copy.
    for (const item of page.items) if (item.kind === 'post') cardOf(item.post.id)?.remove();
    list.append(...page.items.map((item) => (item.kind === 'post' ? postCard(klass, item.post, (id) => section.commentsChanged(id)) : sessionCard(item))));
    if (reset && !page.items.length) list.append(h('p', { class: 'hint', text: 'timeline_empty' }));
    reportSeen(page.items.filter((item) => item.kind === 'post').map((item) => item.post.id));
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
    if (allowed(klass, 'manage_class')) queue.replaceChildren(h('h3', { text: 'approval_queue' }), await approvalQueue(klass, () => load(true)));
  }
  /** A family member's page tells the server which posts it showed them (teachers count
   * them); nothing waits for the answer. */
  function reportSeen(postIds) {
    if (klass.role !== 'family' || !postIds.length) return;
    api('POST', `/api/v1/classes/${klass.id}/seen`, { post_ids: postIds }).catch(() => {});
  }
  more.addEventListener('click', () => load(false));
  feed.append(h('button', {
    type: 'button', class: 'feed-link', text: 'feed_get',
    on: { click: async () => {
      const link = await api('POST', `/api/v1/classes/${klass.id}/feed-token`, {});
      feed.replaceChildren(field('feed_link', h('input', { readOnly: true, value: link.feed_url, class: 'feed-url' })));
    } },
  }));
  const section = h('section', { id: 'timeline', class: 'timeline', 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title', text: 'timeline' }),
    allowed(klass, 'publish_post') ? composer(klass, async (key) => { notice.hidden = false; notice.dataset.i18n = key; notice.textContent = ''; await load(true); notice.replaceChildren(h('span', { text: key })); }) : null,
    notice, queue, list, more, feed);
  if (allowed(klass, 'read_timeline')) load(true).catch(() => {});
  else section.hidden = true;

  function cardOf(postId) {
    return list.querySelector(`article.post[data-post-id="${postId}"]`);
  }
  /** The post as the reader may see it now, or null (gone, or not theirs to see). */
  async function fetchPost(postId) {
    try {
      return await api('GET', `/api/v1/posts/${postId}`);
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }
  /** A post was written or changed state: show it in place, add it on top, or take it away. */
  section.postChanged = async (postId) => {
    const post = await fetchPost(postId);
    if (allowed(klass, 'manage_class')) queue.replaceChildren(h('h3', { text: 'approval_queue' }), await approvalQueue(klass, () => load(true)));
    // Looked up after the last wait: a reload may have shown the post meanwhile.
    const old = cardOf(postId);
    if (!post || post.state !== 'published') {
      old?.remove();
      return;
    }
    const card = postCard(klass, post, section.commentsChanged);
    if (!old) reportSeen([post.id]);
    if (old) old.replaceWith(card);
    else {
      list.querySelector(':scope > p.hint')?.remove();
      list.prepend(card);
    }
  };
  /** A comment came: only the comment list changes, so a comment being typed stays. */
  section.commentsChanged = async (postId) => {
    const old = cardOf(postId);
    if (!old) return section.postChanged(postId);
    const post = await fetchPost(postId);
    if (post) old.querySelector('.comment-block').replaceWith(commentList(post));
  };
  section.reload = () => load(true);
  return section;
}

/** One session's log: attendance (as far as the caller may see it) and the chat. */
export async function sessionPage(sessionId) {
  await requireMe();
  const log = await api('GET', `/api/v1/sessions/${sessionId}`);
  const rows = log.attendance.map((a) => h('tr', {},
    h('td', {}, a.name),
    h('td', {}, a.intervals.map(([from, to]) => h('span', { class: 'interval', text: 'time_range', vars: { from: { date_ms: from }, to: { time_ms: to } } }))),
    h('td', { text: 'duration_value', vars: { duration: { duration_ms: a.total_ms } } })));
  mount('session_title',
    h('h1', { text: 'session_item', vars: { room: log.room_name } }),
    h('p', { class: 'meta' }, when(log.started_at), ' · ', summary(log.duration_ms, log.attendance.length)),
    recordingLink(log),
    log.attendance_visible !== 'none' ? h('section', { class: 'attendance' },
      h('h2', { text: 'attendance' }),
      h('table', {}, h('tbody', {}, rows)),
      h('a', { href: `/api/v1/sessions/${sessionId}/attendance.csv`, class: 'button', text: 'attendance_csv' })) : null,
    log.chat.length ? h('section', { class: 'transcript' },
      h('h2', { text: 'chat_transcript' }),
      h('ul', {}, log.chat.map((c) => h('li', {}, h('strong', {}, c.name), ' ', c.text)))) : null,
    h('p', {}, h('a', { href: `/class/${log.class_id}`, text: 'back_to_class' })));
}
