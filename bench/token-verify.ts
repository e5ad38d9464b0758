// The cost of a token without the cache: mint, and verify a token seen for the first time
// (signature check + claims), per algorithm. Prints µs/op.
// Run: npx tsx bench/token-verify.ts
import { exportJWK, generateKeyPair } from 'jose';
import { TokenService } from '../src/data-plane/tokens/token-service.js';
import type { SigningAlgorithm, SigningKeyRecord } from '../src/domain/signing-key.js';

for (const alg of ['EdDSA', 'ES256'] as SigningAlgorithm[]) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const record: SigningKeyRecord = {
    id: 'sk_bench', alg, publicJwk: { ...(await exportJWK(publicKey)) }, privateJwk: { ...(await exportJWK(privateKey)) },
    createdAt: new Date().toISOString(), retiredAt: null, version: 1,
  };
  const tokens = new TokenService('keygate', 3600);
  await tokens.setKeys([record]);
  const claims = { key: 'key_bench', profile: null, ws: '00000000-0000-4000-8000-000000000000', typ: 'workspace' as const, env: 'live' as const, kv: 1, sfp: 'abcdefabcdef' };
  const n = 5_000;
  const minted: string[] = [];
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) minted.push((await tokens.mint(claims)).token);
  const mintUs = Number(process.hrtime.bigint() - t0) / n / 1000;
  t0 = process.hrtime.bigint();
  for (const token of minted) if (!(await tokens.verify(token))) throw new Error('did not verify');
  const verifyUs = Number(process.hrtime.bigint() - t0) / n / 1000;
  process.stdout.write(`${alg}: mint ${mintUs.toFixed(1)} µs/op, uncached verify ${verifyUs.toFixed(1)} µs/op\n`);
}
