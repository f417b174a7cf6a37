// The management API as the e2e tests call it: one request with an account's key (the
// `authorization` header as given) against a started gateway. A body other than a string is sent as
// JSON; a string is sent as it is (for the malformed-body cases). The answer's body is parsed as
// JSON, or kept as text where it is not JSON. ownerWithKey: the owner account with an upstream key at
// the mock that most tests start from.
import assert from 'node:assert/strict';
import { UPSTREAM_SECRET } from './harness.js';

/** Calls METHOD PATH on GW (from startGateway) with KEY; returns { status, body, headers }. */
export async function gatewayApi(gw, key, method, path, body) {
  const headers = { authorization: key };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(`${gw.base}${path}`, { method, headers, body: payload });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json, headers: r.headers };
}

/** Creates NAME (NAME@example.com) under GW's root account with CREDIT dollars and gives it an
 * upstream key at MOCK_URL (SECRET, the mock's key by default); returns the User as the API answers. */
export async function ownerWithKey(gw, mockUrl, name, credit, secret = UPSTREAM_SECRET) {
  const r = await gatewayApi(gw, gw.rootKey, 'POST', '/x-users', { Name: name, Email: `${name}@example.com`, CreditGranted: credit });
  assert.equal(r.status, 200, `creating ${name}: ${JSON.stringify(r.body)}`);
  const k = await gatewayApi(gw, r.body.User.SecretKey, 'POST', '/x-keys', { Level: 1, Provider: mockUrl, SecretKey: secret });
  assert.equal(k.status, 200, `the key of ${name}: ${JSON.stringify(k.body)}`);
  return r.body.User;
}
