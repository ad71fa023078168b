#include "harness/ek_certificate.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr ParseDer(ByteView der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  // Trailing bytes: an NV index is often larger than the certificate in it
  // and padded, so only the certificate's own bytes count.
  return cert;
}

Bytes ToDer(X509* cert) {
  const int len = i2d_X509(cert, nullptr);
  if (len <= 0) return {};
  Bytes der(static_cast<size_t>(len));
  unsigned char* out = der.data();
  i2d_X509(cert, &out);
  return der;
}

// Every certificate in one file: PEM blocks, or else one DER certificate.
// In a folder, a PEM file with no certificate in it (a key) is passed over.
Status ReadCertificates(const fs::path& file, std::vector<Bytes>& out, bool in_folder) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Parse(file.string() + ": cannot read");
  const Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string text(bytes.begin(), bytes.end());
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
    BIO* bio = BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size()));
    size_t found = 0;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      out.push_back(ToDer(cert));
      X509_free(cert);
      ++found;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (found == 0) return Status::Parse(file.string() + ": a PEM certificate block that does not parse");
    return Status::Ok();
  }
  if (in_folder && text.find("-----BEGIN ") != std::string::npos) return Status::Ok();
  if (!ParseDer(bytes)) return Status::Parse(file.string() + ": neither a PEM nor a DER X.509 certificate");
  out.push_back(bytes);
  return Status::Ok();
}

}  // namespace

Result<Bytes> CertificatePublicKey(ByteView der) {
  X509Ptr cert = ParseDer(der);
  if (!cert) return Status::Parse("not a DER X.509 certificate");
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  const int len = key ? i2d_PUBKEY(key, nullptr) : 0;
  if (len <= 0) return Status::Parse("the certificate's public key is unreadable");
  Bytes spki(static_cast<size_t>(len));
  unsigned char* out = spki.data();
  i2d_PUBKEY(key, &out);
  return spki;
}

std::string PublicKeyKind(ByteView spki_der) {
  const unsigned char* p = spki_der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));
  if (key == nullptr) return "";
  const int id = EVP_PKEY_get_base_id(key);
  EVP_PKEY_free(key);
  return id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : "other";
}

Result<std::vector<Bytes>> LoadEkRoots(const fs::path& path) {
  std::error_code ec;
  std::vector<Bytes> certs;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      // A folder of certificates may hold other things (a README, keys): only certificate files count.
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".pem" || ext == ".crt" || ext == ".cer" || ext == ".der")) {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) TRY(ReadCertificates(f, certs, true));
  } else if (fs::is_regular_file(path, ec)) {
    TRY(ReadCertificates(path, certs, false));
  } else {
    return Status::Parse(path.string() + ": no such file or folder of EK root certificates");
  }
  if (certs.empty()) return Status::Parse(path.string() + ": holds no certificate");
  return certs;
}

Status VerifyEkCertificateChain(ByteView certificate, const std::vector<Bytes>& trusted) {
  X509Ptr leaf = ParseDer(certificate);
  if (!leaf) return Status::Parse("the EK certificate is not a DER X.509 certificate");
  X509_STORE* store = X509_STORE_new();
  for (const Bytes& der : trusted) {
    if (X509Ptr c = ParseDer(der)) X509_STORE_add_cert(store, c.get());
  }
  // Every configured certificate is trusted, as in Keylime's tpm_cert_store
  // (an EK certificate signed by any certificate in the store is accepted),
  // so a manufacturer's intermediate configured alone is enough. EK
  // certificates are judged for who signed them, not when: many outlive
  // their notAfter in the field, and Keylime does not check it either.
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  Status result = Status::Ok();
  if (X509_STORE_CTX_init(ctx, store, leaf.get(), nullptr) != 1) {
    result = Status::Error(Layer::kHarness, "OpenSSL could not set up the chain check");
  } else if (X509_verify_cert(ctx) != 1) {
    result = Status::Error(Layer::kHarness, std::string("the EK certificate does not chain to a configured root: ") +
                                                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  ERR_clear_error();
  return result;
}

}  // namespace tpmlab
