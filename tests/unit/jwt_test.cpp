// SPDX-License-Identifier: BSD-2-Clause
// JWT verification with real tokens: HS256 signed here with OpenSSL's HMAC,
// RS256 with a key generated per run, so nothing depends on canned fixtures.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "core/l7/jwt.hpp"

namespace rlgate::l7 {
namespace {

using nlohmann::json;
using Key = std::shared_ptr<EVP_PKEY>;
constexpr std::int64_t kNow = 1'700'000'000;
const std::string kSecret = "correct horse battery staple, 32+";

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string b64url(std::string_view in) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(acc >> bits) & 63u];
        }
    }
    if (bits > 0)
        out += kAlphabet[(acc << (6 - bits)) & 63u];
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EXPECT_NE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), mac, &len), nullptr);
    return {reinterpret_cast<char*>(mac), len};
}

Key generate(const char* type, int rsa_bits = 2048) {
    EVP_PKEY* k = std::string_view(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits))
                                                  : EVP_PKEY_Q_keygen(nullptr, nullptr, type, "P-256");
    EXPECT_NE(k, nullptr);
    return {k, &EVP_PKEY_free};
}

std::string pem(EVP_PKEY* k, bool private_key = false) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    EXPECT_EQ(private_key ? PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr)
                          : PEM_write_bio_PUBKEY(bio.get(), k),
              1);
    std::string out(BIO_ctrl_pending(bio.get()), '\0');
    EXPECT_EQ(BIO_read(bio.get(), out.data(), static_cast<int>(out.size())), static_cast<int>(out.size()));
    return out;
}

std::string rsa_sign(EVP_PKEY* k, std::string_view data) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    size_t len = 0;
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, k), 1);
    EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, bytes(data), data.size()), 1);
    std::string sig(len, '\0');
    EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes(data), data.size()), 1);
    sig.resize(len);
    return sig;
}

// One RSA key per run (generation is the slow part).
EVP_PKEY* rsa_key() {
    static const Key k = generate("RSA");
    return k.get();
}

// Raw header/payload text, so malformed JSON can still carry a valid signature.
std::string hs_raw(std::string_view header, std::string_view payload, std::string_view secret = kSecret) {
    const auto input = b64url(header) + "." + b64url(payload);
    return input + "." + b64url(hmac_sha256(secret, input));
}
std::string rs_raw(std::string_view header, std::string_view payload, EVP_PKEY* k = rsa_key()) {
    const auto input = b64url(header) + "." + b64url(payload);
    return input + "." + b64url(rsa_sign(k, input));
}

const json kHs = {{"alg", "HS256"}, {"typ", "JWT"}};
const json kRs = {{"alg", "RS256"}, {"typ", "JWT"}};
json claims(json extra = json::object()) {
    json c = {{"sub", "user-42"}, {"iat", kNow - 10}, {"exp", kNow + 3600}};
    c.update(extra);
    return c;
}
std::string hs(const json& payload, const json& header = kHs) { return hs_raw(header.dump(), payload.dump()); }
std::string rs(const json& payload, const json& header = kRs) { return rs_raw(header.dump(), payload.dump()); }

JwtVerifier hs_verifier() { return JwtVerifier::hs256(kSecret); }
JwtVerifier rs_verifier() { return JwtVerifier::rs256(pem(rsa_key())); }

std::string error_of(const JwtVerifier& v, std::string_view token) {
    const auto r = verify(v, token, kNow);
    EXPECT_TRUE(r.ok ? r.error.empty() : r.subject.empty()) << "ok with an error, or refused with a subject";
    return r.ok ? "ok" : r.error;
}

TEST(JwtValid, Hs256AndRs256YieldTheSubject) {
    const auto r = verify(hs_verifier(), hs(claims()), kNow);
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.subject, "user-42");

    const auto v = rs_verifier();
    const JwtVerifier copy = v;  // copies share the key
    const auto r2 = verify(copy, rs(claims({{"sub", "alice@example.com"}})), kNow);
    EXPECT_TRUE(r2.ok) << r2.error;
    EXPECT_EQ(r2.subject, "alice@example.com");
    EXPECT_EQ(v.algorithm(), JwtAlgorithm::rs256);

    EXPECT_EQ(error_of(hs_verifier(), hs(json{{"sub", "x"}}, json{{"alg", "HS256"}})), "ok") << "typ and exp optional";
    EXPECT_EQ(error_of(hs_verifier(), hs(claims({{"exp", kNow + 0.5}}))), "ok") << "fractional NumericDate";
}

TEST(JwtSignature, TamperedPayloadIsRejected) {
    for (const bool rsa : {false, true}) {
        const auto v = rsa ? rs_verifier() : hs_verifier();
        const auto good = rsa ? rs(claims()) : hs(claims());
        const auto evil = rsa ? rs(claims({{"sub", "admin"}})) : hs(claims({{"sub", "admin"}}));
        // The forged payload under the genuine header and signature.
        const auto d1 = good.find('.'), d2 = good.rfind('.');
        const auto forged = good.substr(0, d1) + evil.substr(evil.find('.'), evil.rfind('.') - evil.find('.')) + good.substr(d2);
        EXPECT_EQ(error_of(v, forged), "bad signature") << "rsa=" << rsa;
        EXPECT_EQ(error_of(v, good.substr(0, d2 + 1)), "bad signature") << "empty signature, rsa=" << rsa;
    }
}

TEST(JwtSignature, WrongSecretOrKeyIsRejected) {
    EXPECT_EQ(error_of(hs_verifier(), hs_raw(kHs.dump(), claims().dump(), "another secret")), "bad signature");
    const auto other = generate("RSA");
    EXPECT_EQ(error_of(rs_verifier(), rs_raw(kRs.dump(), claims().dump(), other.get())), "bad signature");
}

TEST(JwtSignature, EveryOneCharacterChangeIsRejected) {
    // Strict base64url (no padding, zero trailing bits) leaves no second spelling of a valid token.
    const auto v = hs_verifier();
    const auto good = hs(claims());
    ASSERT_EQ(error_of(v, good), "ok");
    for (size_t i = 0; i < good.size(); ++i)
        for (const char c : std::string_view("AQgw-_.=")) {
            if (good[i] == c)
                continue;
            auto t = good;
            t[i] = c;
            EXPECT_FALSE(verify(v, t, kNow).ok) << "position " << i << " -> " << c;
        }
}

TEST(JwtAlgorithm, NoneIsRejected) {
    const auto payload = b64url(claims().dump());
    for (const auto* alg : {"none", "None", "NONE"}) {
        const auto token = b64url(json{{"alg", alg}}.dump()) + "." + payload + ".";
        EXPECT_EQ(error_of(hs_verifier(), token), "wrong algorithm") << alg;
        EXPECT_EQ(error_of(rs_verifier(), token), "wrong algorithm") << alg;
    }
    EXPECT_EQ(error_of(hs_verifier(), hs(claims(), json{{"alg", "none"}})), "wrong algorithm") << "even with a valid MAC";
    EXPECT_EQ(error_of(hs_verifier(), hs(claims(), json{{"alg", "hs256"}})), "wrong algorithm") << "case matters";
    EXPECT_EQ(error_of(hs_verifier(), hs(claims(), json{{"typ", "JWT"}})), "malformed") << "alg missing";
    EXPECT_EQ(error_of(hs_verifier(), hs(claims(), json{{"alg", 256}})), "malformed");
}

TEST(JwtAlgorithm, HmacWithThePublicKeyAsSecretFailsAgainstRs256) {
    // The classic confusion: the attacker knows the public PEM and MACs with it.
    const auto public_pem = pem(rsa_key());
    const auto forged = hs_raw(kHs.dump(), claims({{"sub", "admin"}}).dump(), public_pem);
    EXPECT_EQ(error_of(rs_verifier(), forged), "wrong algorithm");
    // Relabelled RS256, the HMAC is still no RSA signature.
    EXPECT_EQ(error_of(rs_verifier(), hs_raw(kRs.dump(), claims().dump(), public_pem)), "bad signature");
    EXPECT_EQ(error_of(hs_verifier(), rs(claims())), "wrong algorithm") << "and the other way round";
}

TEST(JwtTime, ExpiryWithLeeway) {
    const auto v = hs_verifier();  // leeway 30 s
    EXPECT_EQ(error_of(v, hs(claims({{"exp", kNow - 29}}))), "ok") << "within leeway";
    EXPECT_EQ(error_of(v, hs(claims({{"exp", kNow - 30}}))), "expired") << "exp is exclusive";
    EXPECT_EQ(error_of(v, hs(claims({{"exp", kNow - 3600}}))), "expired");
    auto strict = hs_verifier();
    strict.leeway_s = 0;
    EXPECT_EQ(error_of(strict, hs(claims({{"exp", kNow}}))), "expired");
    EXPECT_EQ(error_of(strict, hs(claims({{"exp", kNow + 1}}))), "ok");
    strict.leeway_s = -100;
    EXPECT_EQ(error_of(strict, hs(claims({{"exp", kNow + 1}}))), "ok") << "negative leeway counts as 0";
    EXPECT_EQ(error_of(v, hs(claims({{"exp", std::to_string(kNow + 3600)}}))), "malformed") << "exp must be numeric";
    EXPECT_EQ(error_of(v, hs(claims({{"exp", 1e300}}))), "ok") << "no overflow";
}

TEST(JwtTime, NotBeforeInTheFuture) {
    const auto v = hs_verifier();
    EXPECT_EQ(error_of(v, hs(claims({{"nbf", kNow + 31}}))), "not yet valid");
    EXPECT_EQ(error_of(v, hs(claims({{"nbf", kNow + 30}}))), "ok") << "within leeway";
    EXPECT_EQ(error_of(v, hs(claims({{"nbf", kNow - 60}}))), "ok");
    EXPECT_EQ(error_of(v, hs(claims({{"nbf", true}}))), "malformed");
}

TEST(JwtClaims, IssuerAndAudience) {
    auto v = hs_verifier();
    v.issuer = "https://auth.example.com/";
    v.audience = "rlgate";
    const auto with_aud = [](json aud) { return hs(claims({{"iss", "https://auth.example.com/"}, {"aud", aud}})); };
    EXPECT_EQ(error_of(v, with_aud("rlgate")), "ok");
    EXPECT_EQ(error_of(v, with_aud({"billing", "rlgate"})), "ok") << "array";
    EXPECT_EQ(error_of(v, with_aud("billing")), "wrong audience");
    EXPECT_EQ(error_of(v, with_aud({"billing", "rlgate2"})), "wrong audience");
    EXPECT_EQ(error_of(v, with_aud(json::array())), "wrong audience");
    EXPECT_EQ(error_of(v, with_aud(1)), "wrong audience");
    EXPECT_EQ(error_of(v, with_aud(json::array({json::array({"rlgate"})}))), "wrong audience") << "nested: no";
    EXPECT_EQ(error_of(v, hs(claims({{"iss", "https://auth.example.com/"}}))), "wrong audience") << "missing";
    EXPECT_EQ(error_of(v, hs(claims({{"iss", "https://evil.example.com/"}, {"aud", "rlgate"}}))), "wrong issuer");
    EXPECT_EQ(error_of(v, hs(claims({{"aud", "rlgate"}}))), "wrong issuer") << "missing";
    EXPECT_EQ(error_of(v, hs(claims({{"iss", 7}, {"aud", "rlgate"}}))), "wrong issuer");
    EXPECT_EQ(error_of(hs_verifier(), hs(claims({{"iss", "anyone"}, {"aud", 12}}))), "ok") << "unchecked when not configured";
}

TEST(JwtMalformed, StructureEncodingAndJson) {
    const auto v = hs_verifier();
    const auto good = hs(claims());
    const auto d1 = good.find('.'), d2 = good.rfind('.');
    EXPECT_EQ(error_of(v, ""), "malformed");
    EXPECT_EQ(error_of(v, good.substr(0, d2)), "malformed") << "two segments";
    EXPECT_EQ(error_of(v, good + ".x"), "malformed") << "four segments";
    EXPECT_EQ(error_of(v, ".."), "malformed");
    EXPECT_EQ(error_of(v, "Bearer " + good), "malformed") << "the caller strips the scheme";
    EXPECT_EQ(error_of(v, good.substr(0, d1) + "*" + good.substr(d1)), "malformed") << "bad base64 character";
    EXPECT_EQ(error_of(v, good + "="), "malformed") << "padding";
    EXPECT_EQ(error_of(v, good.substr(0, d1) + "==" + good.substr(d1)), "malformed") << "padding";
    EXPECT_EQ(error_of(v, good.substr(0, d1) + "A" + good.substr(d1)), "malformed") << "length 4n+1";
    // Signed as sent, so only strict decoding can refuse these.
    const auto signed_as_sent = [](std::string input) { return input + "." + b64url(hmac_sha256(kSecret, input)); };
    // Standard base64 ('+', '/') for the same bytes is not base64url.
    const auto url = b64url(R"({"sub":"user>>>???"})");
    ASSERT_EQ(url, "eyJzdWIiOiJ1c2VyPj4-Pz8_In0");
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + "." + url)), "ok");
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + ".eyJzdWIiOiJ1c2VyPj4+Pz8_In0")), "malformed");
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + ".eyJzdWIiOiJ1c2VyPj4-Pz8/In0")), "malformed");
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + "." + url + "=")), "malformed") << "padding";
    // Non-canonical: "e30" is "{}"; "e31" decodes to it too if the trailing bits are ignored.
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + ".e30")), "no subject");
    EXPECT_EQ(error_of(v, signed_as_sent(b64url(kHs.dump()) + ".e31")), "malformed");

    EXPECT_EQ(error_of(v, hs_raw("not json", claims().dump())), "malformed") << "header";
    EXPECT_EQ(error_of(v, hs_raw(R"(["HS256"])", claims().dump())), "malformed") << "header array";
    EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), "not json")), "malformed") << "payload, validly signed";
    EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), R"(["sub","user-42"])")), "malformed") << "payload array";
    EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), R"("user-42")")), "malformed") << "payload string";
    EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), "{\"sub\":\"a\"} trailing")), "malformed");
    EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), "{\"sub\":\"\xff\"}")), "malformed") << "invalid UTF-8";
    EXPECT_EQ(error_of(v, hs(claims(), json{{"alg", "HS256"}, {"typ", 1}})), "malformed") << "typ not a string";
    EXPECT_EQ(error_of(v, hs(claims(), json{{"alg", "HS256"}, {"crit", {"b64"}}, {"b64", false}})), "unsupported header");
}

TEST(JwtMalformed, SubjectMustBeANonEmptyString) {
    const auto v = hs_verifier();
    auto no_sub = claims();
    no_sub.erase("sub");
    EXPECT_EQ(error_of(v, hs(no_sub)), "no subject");
    EXPECT_EQ(error_of(v, hs(claims({{"sub", 42}}))), "no subject");
    EXPECT_EQ(error_of(v, hs(claims({{"sub", ""}}))), "no subject");
    EXPECT_EQ(error_of(v, hs(claims({{"sub", nullptr}}))), "no subject");
}

TEST(JwtLimits, OversizedAndHostileTokensAreRefusedWithoutThrowing) {
    const auto v = hs_verifier();
    const auto big = hs(claims({{"pad", std::string(kMaxJwtBytes, 'x')}}));
    ASSERT_GT(big.size(), kMaxJwtBytes);
    EXPECT_EQ(error_of(v, big), "too long");
    EXPECT_EQ(error_of(v, std::string(kMaxJwtBytes + 1, '.')), "too long");
    const auto near = hs(claims({{"pad", std::string(5000, 'x')}}));
    ASSERT_LE(near.size(), kMaxJwtBytes);
    EXPECT_EQ(error_of(v, near), "ok");

    // Deep nesting, in the header (before the signature) and in a signed payload.
    const auto deep = std::string(3000, '[') + std::string(3000, ']');
    EXPECT_NO_THROW(EXPECT_EQ(error_of(v, hs_raw(deep, "{}")), "malformed"));
    EXPECT_NO_THROW(EXPECT_EQ(error_of(v, hs_raw(kHs.dump(), "{\"sub\":" + deep + "}")), "no subject"));
    EXPECT_NO_THROW(EXPECT_EQ(error_of(v, std::string(5000, 'A') + "..."), "malformed"));
}

TEST(JwtKeys, BadKeysThrowAtConfigTime) {
    EXPECT_THROW(JwtVerifier::hs256(""), std::invalid_argument);
    EXPECT_THROW(JwtVerifier::rs256(""), std::invalid_argument);
    EXPECT_THROW(JwtVerifier::rs256("not a pem"), std::invalid_argument);
    EXPECT_THROW(JwtVerifier::rs256("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), std::invalid_argument);
    auto truncated = pem(rsa_key());
    truncated.erase(truncated.size() / 2, 20);
    EXPECT_THROW(JwtVerifier::rs256(truncated), std::invalid_argument);
    EXPECT_THROW(JwtVerifier::rs256(pem(rsa_key(), /*private_key=*/true)), std::invalid_argument) << "public keys only";
    EXPECT_THROW(JwtVerifier::rs256(pem(generate("EC").get())), std::invalid_argument) << "not RSA";
    EXPECT_THROW(JwtVerifier::rs256(pem(generate("RSA", 1024).get())), std::invalid_argument) << "too short";
    try {
        JwtVerifier::rs256("not a pem");
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("PUBLIC KEY"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(JwtVerifier::rs256(pem(rsa_key())));
}

}  // namespace
}  // namespace rlgate::l7
