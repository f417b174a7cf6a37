// API client for the tollgate pages: the key lives in localStorage (clearable), every call sends
// it as a bearer token to the same origin, and errors carry the API's `message`.
const KEY = 'tollgate-key';

export const getKey = () => localStorage.getItem(KEY) || '';
export const setKey = (k) => localStorage.setItem(KEY, k.trim());
export const clearKey = () => localStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

/** Calls PATH with METHOD and an optional JSON BODY; resolves to {data, headers}. */
export async function call(method, path, body, key = getKey()) {
  const init = { method, headers: { Authorization: `Bearer ${key}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `network error: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const msg = (data && (data.message || data.error?.message)) || `HTTP ${res.status}`;
    throw new ApiError(res.status, msg, data?.error?.code);
  }
  return { data, headers: res.headers };
}

export const get = async (path) => (await call('GET', path)).data;
export const post = async (path, body) => (await call('POST', path, body ?? {})).data;
export const put = async (path, body) => (await call('PUT', path, body ?? {})).data;
export const del = async (path, body) => (await call('DELETE', path, body)).data;

/** Builds a query string from an object, leaving out empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}
