// SPDX-License-Identifier: BSD-2-Clause
// Changes an operator makes at runtime with rlctl (allow/deny entries, tier
// assignments, attached interfaces), kept apart from the config file so a
// reload of the file does not undo them, and persisted in the state
// directory so a restart does not either. Pure logic.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace rlgate::config {

struct RuntimeOverlay {
    std::vector<net::Cidr> allow_added, allow_removed;
    std::vector<net::Cidr> deny_added, deny_removed;
    std::vector<policy::TierMember> members;   // override the config's tier of the same prefix
    std::vector<InterfaceConfig> attached;     // attached with rlctl
    std::vector<std::string> detached;         // config interfaces detached with rlctl
    std::vector<policy::Override> overrides;   // rlctl override set (expired ones are dropped when seen)
    bool emergency = false;                    // rlctl emergency on

    bool operator==(const RuntimeOverlay&) const = default;
};

enum class ListKind { allow, deny };

// rlctl allow/deny add|del. Returns false when nothing changes.
bool add_entry(RuntimeOverlay& o, ListKind kind, const net::Cidr& prefix, const policy::Policy& base);
bool remove_entry(RuntimeOverlay& o, ListKind kind, const net::Cidr& prefix, const policy::Policy& base);
void set_tier(RuntimeOverlay& o, const net::Cidr& prefix, const std::string& tier);
void note_attached(RuntimeOverlay& o, const InterfaceConfig& iface, const std::vector<InterfaceConfig>& base);
void note_detached(RuntimeOverlay& o, const std::string& ifname, const std::vector<InterfaceConfig>& base);

// The config's policy with the overlay applied. Overlay entries that no
// longer make sense (a tier removed from the file) are skipped and named in
// `warnings`.
policy::Policy effective_policy(const policy::Policy& base, const RuntimeOverlay& o,
                                std::vector<std::string>* warnings = nullptr);
std::vector<InterfaceConfig> effective_interfaces(const std::vector<InterfaceConfig>& base, const RuntimeOverlay& o);

nlohmann::json to_json(const RuntimeOverlay& o);
// Throws ConfigError(file, field, reason) on a damaged file.
RuntimeOverlay overlay_from_json(const nlohmann::json& j, const std::string& file);

const char* to_string(AttachModeSetting m);
std::optional<AttachModeSetting> parse_attach_mode(std::string_view text);

}  // namespace rlgate::config
