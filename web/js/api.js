// The JSON API: same-origin fetches with the session cookie, and the CSRF token on changes.

let csrf = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  // 'UPLOAD' posts a FormData (multipart) body as it is.
  const upload = method === 'UPLOAD';
  if (upload) method = 'POST';
  if (body !== undefined && !upload) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : upload ? body : JSON.stringify(body),
  });
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.code || 'http_' + response.status, data?.error?.message || response.statusText);
  }
  if (data && typeof data.csrf_token === 'string') csrf = data.csrf_token;
  return data;
}

let meCache = null;

/**
 * The signed-in user (with classes), or null. Asks `GET /api/v1/session`, which answers 200
 * signed in or not: a signed-out page then logs no failed request in the console.
 */
export async function me({ fresh = false } = {}) {
  if (meCache && !fresh) return meCache;
  const status = await api('GET', '/api/v1/session');
  meCache = status?.signed_in ? status : null;
  return meCache;
}

export function rememberMe(value) {
  meCache = value;
}

export async function signOut() {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    meCache = null;
    csrf = null;
  }
}
