// REST v1 with the session's X-User-Id / X-Auth-Token. Errors carry Rocket.Chat's `error` text.

export const auth = { userId: null, token: null };

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (auth.token) {
    headers['X-User-Id'] = auth.userId;
    headers['X-Auth-Token'] = auth.token;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch('/api/v1/' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw Object.assign(new Error('Cannot reach the server'), { offline: true });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: a proxy error page
  }
  if (!response.ok || (data && data.success === false)) {
    const reason = data?.error || data?.message || `The server answered ${response.status}`;
    throw Object.assign(new Error(reason), { status: response.status, data });
  }
  return data;
}

export const get = (path, query) => request('GET', query ? `${path}?${new URLSearchParams(query)}` : path);
export const post = (path, body) => request('POST', path, body ?? {});
