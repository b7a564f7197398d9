// SPDX-License-Identifier: BSD-2-Clause
// What the daemon knows about bans beyond the kernel's map: why each ban was
// made, by whom, and the history of violations that decides how long the
// next ban of a repeat offender lasts. Pure logic with explicit times (Unix
// milliseconds), persisted as versioned JSON.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/net/ip_address.hpp"
#include "core/policy/policy.hpp"

namespace rlgate::bans {

inline constexpr int kStateFormatVersion = 1;

struct BanRecord {
    net::Cidr prefix;
    std::string origin;  // manual | kernel | l7 | peer
    std::string reason;
    std::string tier;    // tier of the offender (auto-bans), else empty
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> expires_ms;  // none: until removed
    std::uint32_t offence = 0;  // 1 = first offence within the memory period
    // The kernel entry's created_ns this record describes (0: not known yet). A
    // different one at the same prefix is a new ban, e.g. a re-offence after expiry.
    std::uint64_t kernel_created_ns = 0;
    bool operator==(const BanRecord&) const = default;
};

struct Violation {
    net::Cidr source;
    std::string origin;  // kernel | l7
    std::string tier, rule, reason;
    std::int64_t time_ms = 0;
    std::uint64_t ban_ms = 0;
    std::uint32_t offence = 0;
    std::uint32_t drops = 0;  // kernel: drops in the window that triggered it
    bool operator==(const Violation&) const = default;
};

// Ban length for an offender with `earlier` offences within the memory
// period: ban × factor^earlier, capped (overflow-safe).
std::uint64_t escalated_ban_ns(const policy::AutoBan& rule, std::uint32_t earlier);

class BanBook {
public:
    explicit BanBook(std::size_t history_max = 100'000) : history_max_(history_max) {}

    // Offences of `source` (exact prefix) at or after `since_ms`.
    [[nodiscard]] std::uint32_t offences_since(const net::Cidr& source, std::int64_t since_ms) const;
    void add_violation(Violation v);
    [[nodiscard]] const std::vector<Violation>& history() const { return history_; }
    // Drops violations older than `before_ms`; keeps at most history_max.
    void prune(std::int64_t before_ms);

    void put(BanRecord r) { records_[r.prefix] = std::move(r); }
    bool erase(const net::Cidr& prefix) { return records_.erase(prefix) > 0; }
    [[nodiscard]] const BanRecord* find(const net::Cidr& prefix) const;
    [[nodiscard]] const std::map<net::Cidr, BanRecord>& records() const { return records_; }

    [[nodiscard]] nlohmann::json to_json() const;
    // Throws std::runtime_error naming what is wrong (the caller sets the file aside).
    static BanBook from_json(const nlohmann::json& j, std::size_t history_max);

private:
    std::size_t history_max_;
    std::map<net::Cidr, BanRecord> records_;
    std::vector<Violation> history_;  // oldest first
};

}  // namespace rlgate::bans
