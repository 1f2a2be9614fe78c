// The simulator's own PKI: a CA generated at every start and a serving certificate for 127.0.0.1 signed by
// it, as kubeadm gives a cluster (client-go, hence kubectl and Helm, sends a bearer token only over TLS).
// node:crypto makes the RSA keys and the signatures (fast, native) but cannot build X.509 certificates;
// node-forge builds them (its own pure-JS RSA would take ~100 ms per signature).
import { constants, generateKeyPair, KeyObject, privateEncrypt, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";

export interface SimPki {
  /** PEM of the CA certificate (what kubeconfigs carry as certificate-authority-data). */
  caPem: string;
  /** PEM of the serving certificate. */
  certPem: string;
  /** PEM (PKCS#1) of the serving key. */
  keyPem: string;
}

const DAY_MS = 86_400_000;

interface RsaKeys {
  pem: string;
  forgePublic: forge.pki.PublicKey;
  /** A forge-compatible signer whose RSA operation runs in node:crypto. */
  signer: forge.pki.rsa.PrivateKey;
}

// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

const generateRsa = promisify(generateKeyPair);

/** An RSA key pair, generated off the event loop (libuv's thread pool). */
async function rsaKeys(): Promise<RsaKeys> {
  const { privateKey, publicKey } = await generateRsa("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  return {
    pem,
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
    signer: nodeSigner(privateKey),
  };
}

function nodeSigner(key: KeyObject): forge.pki.rsa.PrivateKey {
  const sign = (md: forge.md.MessageDigest): string =>
    privateEncrypt(
      { key, padding: constants.RSA_PKCS1_PADDING },
      Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), "binary")]),
    ).toString("binary");
  // forge's Certificate.sign() only calls key.sign(md).
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

function serial(): string {
  // Positive (high bit clear), 16 random bytes.
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString("hex");
}

/** A fresh CA and a serving certificate for `127.0.0.1`/`localhost` (and the in-cluster service names). */
export async function generatePki(now = Date.now()): Promise<SimPki> {
  const notBefore = new Date(now - DAY_MS);
  const notAfter = new Date(now + 365 * DAY_MS);

  const [caKeys, servingKeys] = await Promise.all([rsaKeys(), rsaKeys()]);
  const ca = forge.pki.createCertificate();
  ca.publicKey = caKeys.forgePublic;
  ca.serialNumber = serial();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = notAfter;
  const caName = [{ name: "commonName", value: "kube-sim-ca" }];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(caKeys.signer, forge.md.sha256.create());

  const serving = forge.pki.createCertificate();
  serving.publicKey = servingKeys.forgePublic;
  serving.serialNumber = serial();
  serving.validity.notBefore = notBefore;
  serving.validity.notAfter = notAfter;
  serving.setSubject([{ name: "commonName", value: "kube-apiserver" }]);
  serving.setIssuer(caName);
  serving.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 7, ip: "127.0.0.1" },
        { type: 2, value: "localhost" },
        { type: 2, value: "kubernetes" },
        { type: 2, value: "kubernetes.default.svc" },
      ],
    },
    { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  serving.sign(caKeys.signer, forge.md.sha256.create());

  return {
    caPem: forge.pki.certificateToPem(ca),
    certPem: forge.pki.certificateToPem(serving),
    keyPem: servingKeys.pem,
  };
}
