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

/**
 * Sets or clears the session. The same credentials go into the `rc_uid` / `rc_token` cookies, as
 * Rocket.Chat's client does: `<img>` and download links cannot send headers, and the server reads
 * the cookies for `/file-upload` and `/avatar`.
 */
export function setAuth(userId, token) {
  auth.userId = userId;
  auth.token = token;
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  for (const [name, value] of [['rc_uid', userId], ['rc_token', token]]) {
    document.cookie = value
      ? `${name}=${encodeURIComponent(value)}; Path=/; SameSite=Strict${secure}`
      : `${name}=; Path=/; Max-Age=0; SameSite=Strict${secure}`;
  }
}

/**
 * A multipart POST with upload progress (fetch cannot report it): `onprogress(sent, total)`.
 * Resolves with the JSON answer; rejects like `request` does. `abort` in `signal` cancels it.
 */
export function upload(path, form, onprogress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/' + path);
    xhr.setRequestHeader('Accept', 'application/json');
    if (auth.token) {
      xhr.setRequestHeader('X-User-Id', auth.userId);
      xhr.setRequestHeader('X-Auth-Token', auth.token);
    }
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onprogress?.(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onerror = () => reject(Object.assign(new Error('Cannot reach the server'), { offline: true }));
    xhr.onabort = () => reject(Object.assign(new Error('Cancelled'), { cancelled: true }));
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status < 200 || xhr.status >= 300 || (data && data.success === false)) {
        const reason = data?.error || data?.message || `The server answered ${xhr.status}`;
        reject(Object.assign(new Error(reason), { status: xhr.status, data }));
      } else resolve(data);
    };
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(form);
  });
}
