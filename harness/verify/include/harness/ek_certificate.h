// EK certificates as a verifier judges them: which NV index a certificate
// came from, the key it certifies, and whether it chains to a manufacturer
// root the verifier trusts. Pure functions over bytes and OpenSSL.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "drivers/bytes.h"

namespace tpmlab {

/// The SubjectPublicKeyInfo (DER) a DER X.509 certificate certifies, or a
/// parse error when the bytes are not one.
Result<Bytes> CertificatePublicKey(ByteView der);

/// "RSA" or "EC": the kind of key a DER SubjectPublicKeyInfo holds ("" when unreadable).
std::string PublicKeyKind(ByteView spki_der);

/// The manufacturer roots and intermediates a verifier trusts, as DER
/// certificates, from a file or a folder of them (*.pem, *.crt, *.cer,
/// *.der: PEM, possibly several per file, or DER). An unreadable path, a
/// file that is no certificate, or a folder holding none is an error naming it.
Result<std::vector<Bytes>> LoadEkRoots(const std::filesystem::path& path);

/// Whether `certificate` (DER) chains to one of `trusted` (DER): the
/// self-signed ones are trust anchors, the others intermediates that may
/// complete the chain. Ok, or an error saying why not (OpenSSL's reason).
Status VerifyEkCertificateChain(ByteView certificate, const std::vector<Bytes>& trusted);

}  // namespace tpmlab
