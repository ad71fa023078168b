// Named response codes: every TPM_RC_ name the harness prints reads back as
// its code, so a scenario may name any refusal it sees in a trace.
#define BOOST_TEST_MODULE response_codes
#include <boost/test/unit_test.hpp>

#include "harness/response_codes.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

BOOST_AUTO_TEST_CASE(every_printed_name_reads_back_as_its_code) {
  int named = 0;
  for (uint32_t code = 0; code <= 0xFFF; ++code) {
    const std::string name = TpmResponseCodeName(code);
    if (name.rfind("TPM_RC_0x", 0) == 0) continue;  // no name: printed as a number
    ++named;
    auto back = TpmResponseCodeFromName(name);
    BOOST_TEST_REQUIRE(back.has_value(), name);
    // Format-one codes read back without their handle/parameter number.
    BOOST_TEST(TpmResponseCodeName(*back) == name);
    BOOST_TEST(*back <= code);
  }
  BOOST_TEST(named > 100);
}

BOOST_AUTO_TEST_CASE(the_constants_are_the_codes_their_names_say) {
  BOOST_TEST(TpmResponseCodeName(rc::kInitialize) == "TPM_RC_INITIALIZE");
  BOOST_TEST(TpmResponseCodeName(rc::kFailure) == "TPM_RC_FAILURE");
  BOOST_TEST(TpmResponseCodeName(rc::kDisabled) == "TPM_RC_DISABLED");
  BOOST_TEST(TpmResponseCodeName(rc::kHierarchy) == "TPM_RC_HIERARCHY");
  BOOST_TEST(TpmResponseCodeName(rc::kBadAuth) == "TPM_RC_BAD_AUTH");
  BOOST_TEST(TpmResponseCodeName(rc::kRetry) == "TPM_RC_RETRY");
  BOOST_TEST(TpmResponseCodeName(rc::kNvUnavailable) == "TPM_RC_NV_UNAVAILABLE");
  BOOST_TEST(*TpmResponseCodeFromName("TPM_RC_SUCCESS") == rc::kSuccess);
  BOOST_TEST(!TpmResponseCodeFromName("TPM_RC_NO_SUCH_CODE").has_value());
  BOOST_TEST(!TpmResponseCodeFromName("DISABLED").has_value());
}

BOOST_AUTO_TEST_CASE(a_refusal_is_recognised_whatever_layer_tss_adds) {
  // tpm2-tss puts its layer in bits 16-23; the TPM's own code is below.
  BOOST_TEST(IsTpmResponse(Status::Tpm(rc::kInitialize, "startup"), rc::kInitialize));
  BOOST_TEST(IsTpmResponse(Status::Tpm(0x00070000 | rc::kFailure, "esys"), rc::kFailure));
  BOOST_TEST(!IsTpmResponse(Status::Tpm(rc::kFailure, "x"), rc::kInitialize));
  BOOST_TEST(!IsTpmResponse(Status::Error(Layer::kTransport, "socket"), rc::kSuccess));
}

}  // namespace
}  // namespace tpmlab
