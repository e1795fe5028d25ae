// Independent verification of a Sigstore bundle with sigstore-js (@sigstore/verify), fully offline.
//
//   node verify.js --bundle B --root trusted_root.json [--artifact FILE] [--subject-digest HEX]
//                  [--key PUB.pem] [--identity SAN --issuer URL]
//
// A keyed bundle is checked against --key, found by the bundle's publicKey hint through
// toTrustMaterial(root, keys); a certificate bundle against the root's CAs, CT and Rekor keys and the
// identity. Thresholds are set to what the bundle carries (a keyed bundle with no log entry needs
// 0 timestamps and 0 log entries), never higher and never lower. For a DSSE bundle the in-toto
// statement's subject must include --subject-digest (sigstore-js checks the signature, not what it
// says). Prints one JSON line and exits 0 on success; prints the error and exits 1 otherwise.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

function args(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

function main() {
  const a = args(process.argv);
  const bundleJSON = JSON.parse(fs.readFileSync(a.bundle, 'utf8'));
  const bundle = bundleFromJSON(bundleJSON);  // validates the bundle's shape for its media type
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(a.root, 'utf8')));
  const keys = {};
  const vm = bundle.verificationMaterial.content;
  if (a.key) {
    if (vm.$case !== 'publicKey') throw new Error('--key given but the bundle has no public-key hint');
    const pem = fs.readFileSync(a.key, 'utf8');
    const der = crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' });
    const type = crypto.createPublicKey(pem).asymmetricKeyType;
    keys[vm.publicKey.hint] = { rawBytes: der, keyDetails: type === 'ed25519' ? 'PKIX_ED25519' : 'PKIX_ECDSA_P256_SHA_256' };
  }
  const material = toTrustMaterial(root, keys);
  const entries = bundle.verificationMaterial.tlogEntries || [];
  const logTimes = entries.filter((e) => e.integratedTime && e.integratedTime !== '0').length;
  const tsa = (bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps || []).length;
  const verifier = new Verifier(material, {
    tlogThreshold: entries.length,
    ctlogThreshold: vm.$case === 'publicKey' ? 0 : 1,
    timestampThreshold: logTimes + tsa,
  });
  const artifact = a.artifact ? fs.readFileSync(a.artifact) : undefined;
  const policy = a.identity ? { subjectAlternativeName: a.identity, extensions: { issuer: a.issuer } } : undefined;
  const signer = verifier.verify(toSignedEntity(bundle, artifact), policy);
  let statement;
  if (bundle.content.$case === 'dsseEnvelope') {
    statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8'));
    if (a['subject-digest']) {
      const ok = (statement.subject || []).some((s) => s.digest && s.digest.sha256 === a['subject-digest']);
      if (!ok) throw new Error(`statement subject does not include sha256:${a['subject-digest']}`);
    }
  }
  process.stdout.write(JSON.stringify({
    ok: true,
    identity: signer.identity ? signer.identity.subjectAlternativeName : null,
    tlogEntries: entries.length,
    predicateType: statement ? statement.predicateType : null,
  }) + '\n');
}

try {
  main();
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: `${err.code || err.name}: ${err.message}` }) + '\n');
  process.exit(1);
}
