// SPDX-License-Identifier: BSD-2-Clause
#include "core/bans/ban_book.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace rlgate::bans {

using nlohmann::json;

std::uint64_t escalated_ban_ns(const policy::AutoBan& rule, std::uint32_t earlier) {
    std::uint64_t ban = rule.ban_ns;
    const std::uint64_t cap = std::max(rule.max_ban_ns, rule.ban_ns);
    for (std::uint32_t i = 0; i < earlier && ban < cap; ++i) {
        if (rule.repeat_factor <= 1)
            break;
        ban = ban > cap / rule.repeat_factor ? cap : ban * rule.repeat_factor;
    }
    return std::min(ban, cap);
}

std::uint32_t BanBook::offences_since(const net::Cidr& source, std::int64_t since_ms) const {
    std::uint32_t n = 0;
    for (auto it = history_.rbegin(); it != history_.rend() && it->time_ms >= since_ms; ++it)
        n += it->source == source;
    return n;
}

void BanBook::add_violation(Violation v) {
    history_.push_back(std::move(v));
    if (history_.size() > history_max_)
        history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(history_.size() - history_max_));
}

void BanBook::prune(std::int64_t before_ms) {
    const auto keep = std::find_if(history_.begin(), history_.end(), [&](const Violation& v) { return v.time_ms >= before_ms; });
    history_.erase(history_.begin(), keep);
}

const BanRecord* BanBook::find(const net::Cidr& prefix) const {
    auto it = records_.find(prefix);
    return it == records_.end() ? nullptr : &it->second;
}

json BanBook::to_json() const {
    json bans = json::array();
    for (const auto& [p, r] : records_) {
        json j{{"prefix", p.to_string()}, {"origin", r.origin}, {"reason", r.reason}, {"tier", r.tier},
               {"created_ms", r.created_ms}, {"offence", r.offence}, {"kernel_created_ns", r.kernel_created_ns}};
        j["expires_ms"] = r.expires_ms ? json(*r.expires_ms) : json(nullptr);
        bans.push_back(std::move(j));
    }
    json history = json::array();
    for (const auto& v : history_)
        history.push_back({{"source", v.source.to_string()}, {"origin", v.origin}, {"tier", v.tier}, {"rule", v.rule},
                           {"reason", v.reason}, {"time_ms", v.time_ms}, {"ban_ms", v.ban_ms},
                           {"offence", v.offence}, {"drops", v.drops}});
    return {{"format", "rlgate-bans"}, {"version", kStateFormatVersion}, {"bans", bans}, {"history", history}};
}

namespace {

net::Cidr cidr_field(const json& j, const char* key) {
    std::string err;
    auto c = net::Cidr::parse(j.at(key).get<std::string>(), &err);
    if (!c)
        throw std::runtime_error(std::string(key) + ": " + err);
    return *c;
}

}  // namespace

BanBook BanBook::from_json(const json& j, std::size_t history_max) {
    if (!j.is_object() || j.value("format", "") != "rlgate-bans")
        throw std::runtime_error("not an rlgate ban state file");
    const int version = j.value("version", 0);
    if (version != kStateFormatVersion)
        throw std::runtime_error("state format version " + std::to_string(version) + " (this rlgated reads " +
                                 std::to_string(kStateFormatVersion) + ")");
    BanBook book(history_max);
    try {
        for (const auto& b : j.at("bans")) {
            BanRecord r;
            r.prefix = cidr_field(b, "prefix");
            r.origin = b.at("origin").get<std::string>();
            r.reason = b.at("reason").get<std::string>();
            r.tier = b.at("tier").get<std::string>();
            r.created_ms = b.at("created_ms").get<std::int64_t>();
            if (!b.at("expires_ms").is_null())
                r.expires_ms = b.at("expires_ms").get<std::int64_t>();
            r.offence = b.at("offence").get<std::uint32_t>();
            r.kernel_created_ns = b.value("kernel_created_ns", std::uint64_t{0});
            book.put(std::move(r));
        }
        for (const auto& h : j.at("history")) {
            Violation v;
            v.source = cidr_field(h, "source");
            v.origin = h.at("origin").get<std::string>();
            v.tier = h.at("tier").get<std::string>();
            v.rule = h.at("rule").get<std::string>();
            v.reason = h.at("reason").get<std::string>();
            v.time_ms = h.at("time_ms").get<std::int64_t>();
            v.ban_ms = h.at("ban_ms").get<std::uint64_t>();
            v.offence = h.at("offence").get<std::uint32_t>();
            v.drops = h.at("drops").get<std::uint32_t>();
            book.add_violation(std::move(v));
        }
    } catch (const json::exception& e) {
        throw std::runtime_error(std::string("damaged entry: ") + e.what());
    }
    return book;
}

}  // namespace rlgate::bans
