// Boards of saved answers (#/boards): pin a chat answer's question to a
// personal or shared board; opening a board asks each pin again under the
// viewer's grants and shows its as-of time. Everything from the server is
// inserted as text.

import { ApiError, api, json } from './api.js';
import { el } from './render.js';

function errorText(e) {
  return e instanceof ApiError ? e.message : 'steward could not be reached.';
}

let pinCount = 0;

// A "Pin to a board" control for an answer to `question`, for user `me`.
export function pinControl(question, me) {
  const n = ++pinCount;
  const select = el('select', { id: `pin-board-${n}` });
  const status = el('span', { class: 'hint', role: 'status' });
  const form = el(
    'form',
    { class: 'pin-form' },
    el('label', { for: `pin-board-${n}`, text: 'Board' }),
    select,
    el('button', { type: 'submit', class: 'secondary', text: 'Pin' }),
    status,
  );
  const box = el('details', { class: 'pin' }, el('summary', { text: 'Pin to a board' }), form);
  box.addEventListener('toggle', async () => {
    if (!box.open || select.options.length) return;
    try {
      const { boards } = await json('/api/boards');
      const own = boards.filter((b) => b.owner === me);
      select.replaceChildren(
        ...own.map((b) => el('option', { value: b.id, text: `${b.name}${b.shared ? ' (shared)' : ''}` })),
        el('option', { value: '', text: 'New personal board “My answers”' }),
      );
    } catch (e) {
      status.textContent = errorText(e);
    }
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      let id = select.value;
      if (!id) {
        id = (await json('/api/boards', { method: 'POST', body: { name: 'My answers' } })).id;
        select.prepend(el('option', { value: id, text: 'My answers' }));
        select.value = id;
      }
      await api(`/api/boards/${id}/pins`, { method: 'POST', body: { question } });
      status.textContent = ' Pinned.';
    } catch (e) {
      status.textContent = ` ${errorText(e)}`;
    }
  });
  return box;
}

// A button that DELETEs `path`, then calls `after`; errors go to `status`.
function deleteButton(text, path, status, after) {
  return el('button', {
    type: 'button',
    class: 'secondary',
    text,
    onclick: async () => {
      try {
        await api(path, { method: 'DELETE' });
        after();
      } catch (e) {
        status.textContent = errorText(e);
      }
    },
  });
}

async function openBoard(board, me, detail, status, renderAnswer, onAsk, refresh) {
  const { pins } = await json(`/api/boards/${board.id}`);
  const mine = board.owner === me.user;
  const heading = el('h2', { id: 'board-title', tabindex: '-1', text: board.name });
  const parts = [heading, el('p', { class: 'hint', text: `${board.shared ? 'Shared' : 'Personal'} board of ${board.owner}. Each answer is asked again now, with what you may see.` })];
  if (mine || me.admin) {
    parts.push(
      deleteButton('Delete board', `/api/boards/${board.id}`, status, () => {
        detail.replaceChildren();
        refresh();
      }),
    );
  }
  if (!pins.length) parts.push(el('p', { class: 'hint', text: 'Nothing pinned yet: pin an answer from the chat.' }));
  const list = el('ol', { class: 'turns', 'aria-labelledby': 'board-title' });
  parts.push(list);
  detail.replaceChildren(...parts);
  heading.focus();
  for (const p of pins) {
    const box = el('div', { class: 'answer', 'aria-busy': 'true' }, el('p', { class: 'progress', role: 'status', text: 'Asking again…' }));
    const item = el('li', { class: 'turn pinned' }, el('p', { class: 'question', text: p.question }), box);
    if (mine) {
      item.append(deleteButton('Remove from board', `/api/boards/${board.id}/pins/${p.id}`, status, () => item.remove()));
    }
    list.append(item);
  }
  // One at a time: each re-run counts against the viewer's question rate.
  for (const [i, p] of pins.entries()) {
    const box = list.children[i].querySelector('.answer');
    try {
      const { answer } = await json(`/api/boards/${board.id}/pins/${p.id}/run`, { method: 'POST' });
      renderAnswer(box, answer, p.question, onAsk);
    } catch (e) {
      box.replaceChildren(el('p', { class: 'error', role: 'alert', text: errorText(e) }));
    }
    box.setAttribute('aria-busy', 'false');
  }
}

// Fills the board list; `onAsk` asks a question in the chat.
export async function renderBoards(me, list, detail, status, renderAnswer, onAsk) {
  const refresh = () => renderBoards(me, list, detail, status, renderAnswer, onAsk).catch((e) => (status.textContent = errorText(e)));
  const { boards } = await json('/api/boards');
  status.textContent = boards.length ? '' : 'No boards yet.';
  list.replaceChildren(
    ...boards.map((b) =>
      el(
        'li',
        {},
        el('button', {
          type: 'button',
          class: 'link',
          text: b.name,
          onclick: () => openBoard(b, me, detail, status, renderAnswer, onAsk, refresh).catch((e) => (status.textContent = errorText(e))),
        }),
        el('span', { class: 'hint', text: ` · ${b.shared ? 'shared' : 'personal'} · ${b.owner === me.user ? 'yours' : b.owner} · ${b.pins} ${b.pins === 1 ? 'answer' : 'answers'}` }),
      ),
    ),
  );
}

// Wires the "new board" form once.
export function boardForm(form, name, shared, status, onCreated) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await json('/api/boards', { method: 'POST', body: { name: name.value, shared: shared.checked } });
      name.value = '';
      shared.checked = false;
      onCreated();
    } catch (e) {
      status.textContent = errorText(e);
    }
  });
}
