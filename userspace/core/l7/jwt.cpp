// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace rlgate::l7 {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;  // '=', '+', '/', whitespace: not base64url without padding
}

// Strict base64url: no padding, and the unused low bits of the last character
// must be zero, so each byte string has exactly one accepted spelling.
std::optional<std::string> b64url_decode(std::string_view in) {
    if (in.size() % 4 == 1)
        return std::nullopt;
    std::string out;
    out.reserve(in.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        const int v = sextet(c);
        if (v < 0)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xffu);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return std::nullopt;
    return out;
}

// A JSON object or nullopt: parse errors never throw.
std::optional<nlohmann::json> json_object(std::string_view segment) {
    const auto raw = b64url_decode(segment);
    if (!raw)
        return std::nullopt;
    auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object())  // also false for "discarded" (parse error)
        return std::nullopt;
    return j;
}

JwtResult fail(const char* why) { return {false, {}, why}; }

JwtResult verify_unchecked(const JwtVerifier& v, std::string_view token, std::int64_t now) {
    if (token.size() > kMaxJwtBytes)
        return fail("too long");
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        return fail("malformed");

    const auto header = json_object(token.substr(0, dot1));
    if (!header)
        return fail("malformed");
    const auto alg = header->find("alg");
    const char* want = v.algorithm() == JwtAlgorithm::hs256 ? "HS256" : "RS256";
    if (alg == header->end() || !alg->is_string())
        return fail("malformed");
    if (alg->get_ref<const std::string&>() != want)
        return fail("wrong algorithm");
    if (const auto typ = header->find("typ"); typ != header->end() && !typ->is_string())
        return fail("malformed");
    // RFC 7515 4.1.11: extensions we would have to understand (e.g. b64=false).
    if (header->contains("crit"))
        return fail("unsupported header");

    // Signature before the claims: nothing unauthenticated is believed.
    const auto sig = b64url_decode(token.substr(dot2 + 1));
    if (!sig)
        return fail("malformed");
    if (!v.signature_ok(token.substr(0, dot2), *sig))
        return fail("bad signature");

    const auto claims = json_object(token.substr(dot1 + 1, dot2 - dot1 - 1));
    if (!claims)
        return fail("malformed");
    const auto& c = *claims;
    // NumericDate may be fractional; doubles keep huge values from overflowing.
    const double t = static_cast<double>(now);
    const double leeway = static_cast<double>(std::max<std::int64_t>(0, v.leeway_s));
    if (const auto exp = c.find("exp"); exp != c.end()) {
        if (!exp->is_number())
            return fail("malformed");
        if (t >= exp->get<double>() + leeway)
            return fail("expired");
    }
    if (const auto nbf = c.find("nbf"); nbf != c.end()) {
        if (!nbf->is_number())
            return fail("malformed");
        if (t + leeway < nbf->get<double>())
            return fail("not yet valid");
    }
    if (!v.issuer.empty()) {
        const auto iss = c.find("iss");
        if (iss == c.end() || !iss->is_string() || iss->get_ref<const std::string&>() != v.issuer)
            return fail("wrong issuer");
    }
    if (!v.audience.empty()) {
        const auto aud = c.find("aud");
        const auto is_ours = [&](const nlohmann::json& a) {
            return a.is_string() && a.get_ref<const std::string&>() == v.audience;
        };
        if (aud == c.end() || !(is_ours(*aud) || (aud->is_array() && std::any_of(aud->begin(), aud->end(), is_ours))))
            return fail("wrong audience");
    }
    const auto sub = c.find("sub");
    if (sub == c.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty())
        return fail("no subject");
    return {true, sub->get<std::string>(), {}};
}

}  // namespace

JwtVerifier JwtVerifier::hs256(std::string secret) {
    if (secret.empty())
        throw std::invalid_argument("jwt: HS256 secret is empty");
    JwtVerifier v(JwtAlgorithm::hs256);
    v.secret_ = std::move(secret);
    return v;
}

JwtVerifier JwtVerifier::rs256(std::string_view pem) {
    if (pem.size() > INT_MAX)
        throw std::invalid_argument("jwt: RS256 public key is too large");
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    if (!bio)
        throw std::bad_alloc();
    // A callback that refuses: an encrypted PEM must not prompt on the terminal.
    auto no_password = [](char*, int, int, void*) -> int { return 0; };
    std::shared_ptr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_password, nullptr), &EVP_PKEY_free);
    ERR_clear_error();
    if (!key)
        throw std::invalid_argument("jwt: RS256 public key is not a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo)");
    if (!EVP_PKEY_is_a(key.get(), "RSA"))
        throw std::invalid_argument("jwt: RS256 public key is not an RSA key");
    if (EVP_PKEY_get_bits(key.get()) < 2048)  // RFC 7518 3.3
        throw std::invalid_argument("jwt: RS256 public key is shorter than 2048 bits");
    JwtVerifier v(JwtAlgorithm::rs256);
    v.key_ = std::move(key);
    return v;
}

bool JwtVerifier::signature_ok(std::string_view input, std::string_view signature) const {
    if (alg_ == JwtAlgorithm::hs256) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (secret_.size() > INT_MAX ||
            !HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), bytes(input), input.size(), mac, &len)) {
            ERR_clear_error();
            return false;
        }
        // Constant time: a timing oracle on the MAC would let a client forge it byte by byte.
        return signature.size() == len && CRYPTO_memcmp(mac, signature.data(), len) == 0;
    }
    MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    // EVP_PKEY is reference-counted and only read here: safe to share across threads.
    const bool ok = ctx && key_ && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
                    EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(input), input.size()) == 1;
    ERR_clear_error();  // a failed verify leaves errors queued on this thread
    return ok;
}

JwtResult verify(const JwtVerifier& v, std::string_view token, std::int64_t now_unix_s) {
    try {
        return verify_unchecked(v, token, now_unix_s);
    } catch (const std::exception&) {  // json type errors, bad_alloc: a refusal, never a crash
        return fail("malformed");
    }
}

}  // namespace rlgate::l7
