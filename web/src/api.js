// Talking to steward: same-origin fetches with the session cookie; state-changing
// requests echo the CSRF cookie in X-CSRF-Token (see README, HTTP API).

function cookie(name) {
  const pair = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
  return pair ? decodeURIComponent(pair.slice(name.length + 1)) : '';
}

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const code = body?.error?.code ?? 'http_error';
  const message = body?.error?.message ?? `The server answered ${res.status}.`;
  return new ApiError(res.status, code, message, body);
}

export async function api(path, { method = 'GET', body, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (method !== 'GET') headers['X-CSRF-Token'] = cookie('steward_csrf');
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return res;
}

export async function json(path, options) {
  return (await api(path, options)).json();
}

// POST /api/chat as server-sent events: calls onEvent(name, data) for
// `progress`, `delta`, `answer` and `error` events as they arrive.
export async function askStream(question, conversationId, onEvent) {
  const body = { question, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone };
  if (conversationId) body.conversation_id = conversationId;
  const res = await api('/api/chat', { method: 'POST', body, accept: 'text/event-stream' });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(name, data.join('\n'));
    }
  }
}
