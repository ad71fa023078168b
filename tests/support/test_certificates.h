// Test support: X.509 certificates made with OpenSSL for EK certificate
// tests — a root CA and EK certificates it issues for a given public key.
#pragma once

#include <boost/test/unit_test.hpp>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "drivers/bytes.h"

namespace tpmlab::testing {

struct TestCa {
  EVP_PKEY* key = nullptr;  // owned; lives as long as the test program
  Bytes der;                // its self-signed certificate
  std::string name;
};

inline Bytes CertificateDer(X509* cert) {
  const int len = i2d_X509(cert, nullptr);
  BOOST_REQUIRE(len > 0);
  Bytes der(static_cast<size_t>(len));
  unsigned char* out = der.data();
  i2d_X509(cert, &out);
  return der;
}

// A certificate for `subject_key` (a DER SubjectPublicKeyInfo) named
// `subject`, signed by `issuer_key` as `issuer` (self-signed when the two match).
inline Bytes IssueCertificate(ByteView subject_key, const std::string& subject, EVP_PKEY* issuer_key,
                              const std::string& issuer, bool ca) {
  const unsigned char* p = subject_key.data();
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(subject_key.size()));
  BOOST_REQUIRE(pub != nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
  X509_set_pubkey(cert, pub);
  auto set_name = [](X509_NAME* n, const std::string& cn) {
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  };
  set_name(X509_get_subject_name(cert), subject);
  set_name(X509_get_issuer_name(cert), issuer);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(cert, bc, -1);
  X509_EXTENSION_free(bc);
  if (ca) {
    // Certificate tools (GnuTLS's, which swtpm_localca uses) want the
    // issuer's subject key identifier to name it in what they sign.
    X509_EXTENSION* ski = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(cert, ski, -1);
    X509_EXTENSION_free(ski);
    X509_EXTENSION* ku = X509V3_EXT_conf_nid(nullptr, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    X509_add_ext(cert, ku, -1);
    X509_EXTENSION_free(ku);
  }
  BOOST_REQUIRE(X509_sign(cert, issuer_key, EVP_sha256()) > 0);
  Bytes der = CertificateDer(cert);
  X509_free(cert);
  EVP_PKEY_free(pub);
  return der;
}

inline Bytes PublicKeyDer(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  BOOST_REQUIRE(len > 0);
  Bytes der(static_cast<size_t>(len));
  unsigned char* out = der.data();
  i2d_PUBKEY(key, &out);
  return der;
}

// A DER signature with SHA-256: PKCS#1 v1.5 for RSA, X9.62 ECDSA-Sig-Value for EC.
inline Bytes SignSha256(EVP_PKEY* key, ByteView message) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  BOOST_REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  BOOST_REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) == 1);
  Bytes sig(len);
  BOOST_REQUIRE(EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) == 1);
  sig.resize(len);
  return sig;
}

// A fresh root CA with its own key (EC P-256, or RSA 2048 for tools that
// only sign with RSA, as swtpm_localca's).
inline TestCa MakeTestCa(const std::string& name, bool rsa = false) {
  TestCa ca;
  ca.key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  BOOST_REQUIRE(ca.key != nullptr);
  ca.name = name;
  ca.der = IssueCertificate(PublicKeyDer(ca.key), name, ca.key, name, true);
  return ca;
}

// An EK certificate the CA issues for `ek_public_der`.
inline Bytes IssueEkCertificate(const TestCa& ca, ByteView ek_public_der) {
  return IssueCertificate(ek_public_der, "tpmlab test EK", ca.key, ca.name, false);
}

}  // namespace tpmlab::testing
