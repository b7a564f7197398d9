// SPDX-License-Identifier: BSD-2-Clause
// Bearer JWT verification for the L7 limiter: the verified `sub` keys the
// per-user limits. Compact JWS only, one configured algorithm (HS256 or
// RS256) so a token cannot choose how it is checked ("none", alg confusion).
// No I/O: the clock is passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace rlgate::l7 {

enum class JwtAlgorithm { hs256, rs256 };

// Longer tokens are refused before any decoding: bounds the work a client can ask for.
inline constexpr std::size_t kMaxJwtBytes = 8 * 1024;

struct JwtVerifier {
    // Built once from config; throw std::invalid_argument on a bad key (empty
    // secret; PEM that is not an RSA "PUBLIC KEY" of at least 2048 bits).
    static JwtVerifier hs256(std::string secret);
    static JwtVerifier rs256(std::string_view public_key_pem);

    // Optional checks; empty = not checked.
    std::string issuer;
    std::string audience;        // matches "aud" as a string or any element of an array
    std::int64_t leeway_s = 30;  // clock skew allowed for exp/nbf (negative counts as 0)

    JwtAlgorithm algorithm() const { return alg_; }
    // Does `signature` (decoded bytes) sign `signing_input` ("header.payload" as sent)?
    bool signature_ok(std::string_view signing_input, std::string_view signature) const;

private:
    explicit JwtVerifier(JwtAlgorithm alg) : alg_(alg) {}
    JwtAlgorithm alg_;
    std::string secret_;                       // hs256
    std::shared_ptr<evp_pkey_st> key_;  // rs256; shared so copies stay cheap, never modified after load
};

// error: "too long", "malformed", "wrong algorithm", "unsupported header" (crit),
// "bad signature", "expired", "not yet valid", "wrong issuer", "wrong audience", "no subject".
struct JwtResult {
    bool ok = false;
    std::string subject;
    std::string error;
};

// `token` is the compact JWS (the caller strips "Bearer "). Never throws on hostile input.
JwtResult verify(const JwtVerifier& v, std::string_view token, std::int64_t now_unix_s);

}  // namespace rlgate::l7
