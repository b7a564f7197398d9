// SPDX-License-Identifier: BSD-2-Clause
#include "core/bans/fleet_message.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

namespace rlgate::bans {

using json = nlohmann::json;

namespace {

std::string hmac_hex(std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), mac, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[mac[i] >> 4];
        out += kHex[mac[i] & 15];
    }
    return out;
}

}  // namespace

bool valid_fleet_host(std::string_view host) {
    return !host.empty() && host.size() <= 64 && host.find_first_of(" \t\r\n\"{}") == std::string_view::npos;
}

std::string encode(const FleetMessage& m, std::string_view key) {
    json j{{"v", 1},
           {"op", m.op == FleetMessage::Op::ban ? "ban" : "unban"},
           {"cidr", m.prefix.to_string()},
           {"host", m.host},
           {"origin", m.origin},
           {"at_ms", m.at_ms}};
    if (m.op == FleetMessage::Op::ban) {
        j["reason"] = m.reason.substr(0, kFleetReasonMax);
        j["expires_ms"] = m.expires_ms;
    }
    auto text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (key.empty())
        return text;
    return hmac_hex(key, text) + "." + text;
}

std::optional<FleetMessage> decode_fleet_message(std::string_view text, std::string* error, std::string_view key) {
    const auto bad = [&](const std::string& why) -> std::optional<FleetMessage> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    if (text.size() > kFleetMessageMax)
        return bad("longer than " + std::to_string(kFleetMessageMax) + " bytes");
    if (!key.empty()) {
        const auto dot = text.find('.');
        if (dot != 64)
            return bad("no MAC (a host without the fleet key, or not ours)");
        const auto want = hmac_hex(key, text.substr(65));
        if (CRYPTO_memcmp(want.data(), text.data(), 64) != 0)
            return bad("wrong MAC (another fleet key, or forged)");
        text.remove_prefix(65);
    } else if (text.size() > 65 && text[64] == '.') {
        text.remove_prefix(65);  // signed, and no key here to check it: the JSON only
    }
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object())
        return bad("not a JSON object");
    if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<std::int64_t>() != 1)
        return bad("not version 1");
    const auto str = [&](const char* name, std::string& out) {
        if (!j.contains(name) || !j[name].is_string())
            return false;
        out = j[name].get<std::string>();
        return true;
    };
    const auto num = [&](const char* name, std::int64_t& out) {
        if (!j.contains(name) || !j[name].is_number_integer() || j[name].get<std::int64_t>() < 0)
            return false;
        out = j[name].get<std::int64_t>();
        return true;
    };
    FleetMessage m;
    std::string op, cidr;
    if (!str("op", op) || (op != "ban" && op != "unban"))
        return bad("op is not ban or unban");
    m.op = op == "ban" ? FleetMessage::Op::ban : FleetMessage::Op::unban;
    if (!str("cidr", cidr))
        return bad("no cidr");
    std::string why;
    const auto prefix = net::Cidr::parse(cidr, &why);
    if (!prefix)
        return bad("cidr: " + why);
    m.prefix = *prefix;
    if (!str("host", m.host) || !valid_fleet_host(m.host))
        return bad("no valid host");
    if (!str("origin", m.origin) || (m.origin != "manual" && m.origin != "kernel" && m.origin != "l7"))
        return bad("origin is not manual, kernel or l7");
    if (!num("at_ms", m.at_ms))
        return bad("no at_ms");
    if (m.op == FleetMessage::Op::ban) {
        if (!str("reason", m.reason) || m.reason.size() > kFleetReasonMax)
            return bad("no reason, or a reason too long");
        if (!num("expires_ms", m.expires_ms))
            return bad("no expires_ms");
    }
    return m;
}

}  // namespace rlgate::bans
