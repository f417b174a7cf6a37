// Throwaway TLS material for tests with a TLS upstream, made with `openssl` in a temporary
// directory at test time and removed afterwards (no key is ever committed): a CA the gateway is
// told to trust, server certificates it signs, and a second CA nobody trusts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const openssl = (dir, args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(dir, name) {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=tollgate test ${name}`]);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

/** A server certificate for SANS (e.g. 'DNS:localhost,IP:127.0.0.1') signed by CA. */
function makeServer(dir, name, ca, sans) {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${sans}\n`);
  openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(Date.now()),
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

/** { ca, good, wrongName, untrusted, cleanup() }: good names localhost and 127.0.0.1, wrongName
 *  only wrong.example (both signed by ca), untrusted names localhost but comes from another CA. */
export function makeCerts() {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-certs-'));
  const ca = makeCa(dir, 'ca');
  const other = makeCa(dir, 'other-ca');
  return {
    dir,
    ca: ca.cert,
    good: makeServer(dir, 'good', ca, 'DNS:localhost,IP:127.0.0.1'),
    wrongName: makeServer(dir, 'wrong', ca, 'DNS:wrong.example'),
    untrusted: makeServer(dir, 'untrusted', other, 'DNS:localhost,IP:127.0.0.1'),
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
}
